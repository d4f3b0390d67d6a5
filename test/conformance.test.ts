/**
 * The driver conformance suite: every exercise in `test/conformance/` runs once per driver kind, so the
 * SQLite and PostgreSQL drivers are held to one contract (docs/driver-contract.md).
 * Set `WARDEN_TEST_DRIVERS=sqlite` (or `postgres`) to run against one driver only.
 */
import { describe } from 'vitest';
import { exerciseAlerts } from './conformance/alerts.js';
import { exerciseAudit } from './conformance/audit.js';
import { exerciseDriverBasics } from './conformance/driver-basics.js';
import { exerciseJobClaim } from './conformance/job-claim.js';
import { exerciseJobClaimContention } from './conformance/job-claim-contention.js';
import { exerciseJobGetMany } from './conformance/job-get-many.js';
import { exerciseJobInsert } from './conformance/job-insert.js';
import { exerciseJobLease } from './conformance/job-lease.js';
import { exerciseJobOperator } from './conformance/job-operator.js';
import { exerciseJobRaces } from './conformance/job-races.js';
import { exerciseJobRescue } from './conformance/job-rescue.js';
import { exerciseJobStepsCheckpoint } from './conformance/job-steps-checkpoint.js';
import { exerciseJobUnique } from './conformance/job-unique.js';
import { exerciseLock } from './conformance/lock.js';
import { exerciseMigration } from './conformance/migration.js';
import { exerciseQueue } from './conformance/queue.js';
import { exerciseRetention } from './conformance/retention.js';
import { exerciseSchedule } from './conformance/schedule.js';
import { DRIVER_KINDS } from './support/test-databases.js';

describe.each(DRIVER_KINDS)('%s driver', (kind) => {
  exerciseMigration(kind);
  exerciseDriverBasics(kind);
  exerciseJobInsert(kind);
  exerciseJobClaim(kind);
  exerciseJobClaimContention(kind);
  exerciseJobLease(kind);
  exerciseJobRescue(kind);
  exerciseJobOperator(kind);
  exerciseJobGetMany(kind);
  exerciseJobRaces(kind);
  exerciseJobUnique(kind);
  exerciseJobStepsCheckpoint(kind);
  exerciseQueue(kind);
  exerciseSchedule(kind);
  exerciseLock(kind);
  exerciseRetention(kind);
  exerciseAudit(kind);
  exerciseAlerts(kind);
});
