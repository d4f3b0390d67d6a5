/**
 * Warden: durable background jobs and scheduled work on embedded SQLite or PostgreSQL.
 * @module
 */
export { createWarden, Warden, DEFAULT_PAYLOAD_LIMIT, type EnqueueItem, type ActorOptions, type WardenStats } from './client/warden.js';
export type { WardenOptions, EnqueueOptions, EnqueueResult } from './client/warden-options.js';
export { defineJob, type JobDefinition, type JobDefinitionOptions, type JobContext, type JobHandler, PRIORITY_RANGE } from './job/define-job.js';
export { type RetryOptions, type BackoffOptions, type RetryPolicy, DEFAULT_RETRY, retryDelayMs } from './job/retry-policy.js';
export { type JobRow, type AttemptRow, type JobState, type AttemptOutcome, type ErrorInfo, type QueueStats, JOB_STATES, ACTIVE_STATES } from './job/job-record.js';
export type { WorkerOptions } from './runtime/worker-options.js';
export type { WorkerCounters, DrainResult } from './runtime/worker.js';
export { handleShutdownSignals, type ShutdownSignalOptions } from './runtime/shutdown-signals.js';
export type { WardenEventMap, WardenEventName, JobRef } from './events/event-map.js';
export type { TypedEmitter } from './events/typed-emitter.js';
export { type Clock, systemClock } from './clock/clock.js';
export { type Duration, parseDuration } from './validation/duration.js';
export { NAME_PATTERN } from './validation/names.js';
export { createDriver, DEFAULT_DATABASE_URL, type DatabaseOptions } from './driver/create-driver.js';
export type { Driver, DriverCapabilities } from './driver/driver.js';
export * from './errors.js';
export type { StartOptions } from './client/warden-options.js';
export { defineSchedule, type ScheduleDefinition, type ScheduleOptions, type OverlapPolicy, type MisfirePolicy } from './schedule/define-schedule.js';
export type { ScheduleOperations } from './schedule/schedule-operations.js';
export type { ScheduleRow, ScheduleTickRow } from './driver/schedule-params.js';
export { Lease } from './lock/lease.js';
export type { LockManager, LockAcquireOptions } from './lock/lock-manager.js';
export type { LockRow, LockCheckResult } from './driver/lock-params.js';
export { LOCK_NAME_PATTERN } from './validation/names.js';
export type { StepInfo, StepOptions, IterateOptions, IterateResult, IterationPage, IterationCheckpoint, BatchInfo, TransactionHandle } from './job/job-context-options.js';
export type { UniqueOptions, UniquePolicy, JobUniqueOptions } from './job/unique-options.js';
export type { JobProgress } from './job/job-record.js';
export type { JobStepRow } from './driver/driver.js';
export { DEFAULT_CHECKPOINT_EVERY } from './runtime/iteration.js';
