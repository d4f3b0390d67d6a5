/**
 * Warden's example app: `npm start` (= `tsx examples/basic/main.ts`).
 *
 * Starts from a fresh database, enqueues a handful of real jobs (emails, a report, a flaky partner API call,
 * a payment that is declined), runs a worker until every job is finished, prints what happened, and exits
 * with code 0 when everything behaved as expected (1 otherwise).
 *
 * Environment:
 * - `WARDEN_DATABASE_URL`: `sqlite:<file>` (default `sqlite:./warden-example.db`) or `postgres://…`.
 *   The example DELETES that SQLite file, or DROPS the PostgreSQL schema below, at start.
 * - `WARDEN_SCHEMA`: the PostgreSQL schema to use (default `warden_example`).
 * - `WARDEN_LOG_LEVEL`: Warden's log level on stderr (default `warn`; `info` also shows the jobs' own logs).
 *
 * Files written in the working directory: `warden-example.db*` (SQLite), `example-outbox/*.eml` (emails)
 * and `reports/*.json` (reports).
 * @module
 */
import { readdir, rm } from 'node:fs/promises';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden, PayloadValidationError, type JobRow } from '../../src/index.js';
import { callPartnerApi, chargeCard, exampleConfig, generateReport, jobs, sendEmail } from './jobs.js';
import { startPartnerServer } from './partner-server.js';

const DATABASE_URL = process.env.WARDEN_DATABASE_URL || 'sqlite:./warden-example.db';
const SCHEMA = process.env.WARDEN_SCHEMA || 'warden_example';
const OUTBOX_DIR = exampleConfig.outboxDir;
const REPORTS_DIR = exampleConfig.reportsDir;
/** Longest the example waits for its jobs before giving up. */
const DEADLINE_MS = 60_000;
/** How often the example looks at the queue counts while waiting. */
const STATS_POLL_MS = 200;

const t0 = performance.now();
const failures: string[] = [];

/** Prints one line on stdout, prefixed with the time since start. */
function say(line = ''): void {
  const seconds = ((performance.now() - t0) / 1000).toFixed(2).padStart(6);
  console.log(line ? `+${seconds}s  ${line}` : '');
}

/** Records an expectation; the example exits with 1 if any failed. */
function expect(ok: boolean, what: string): void {
  if (!ok) failures.push(what);
}

/** Deletes the SQLite file (with its WAL files) or drops the PostgreSQL schema, so every run starts fresh. */
async function resetDatabase(url: string, schema: string): Promise<string> {
  if (url.startsWith('sqlite:')) {
    let file = url.slice('sqlite:'.length);
    if (file.startsWith('//')) file = file.slice(2);
    if (file === ':memory:') return 'SQLite in memory';
    await Promise.all(['', '-wal', '-shm', '-journal'].map((suffix) => rm(`${file}${suffix}`, { force: true })));
    return `SQLite file ${file} (deleted and recreated)`;
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Checked because it is put into SQL text below (identifiers cannot be bound parameters).
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`Expected WARDEN_SCHEMA to be a plain lowercase identifier, got ${JSON.stringify(schema)}`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
    return `PostgreSQL schema "${schema}" (dropped and recreated)`;
  }
  throw new Error(`Expected WARDEN_DATABASE_URL to start with sqlite:, postgres:// or postgresql://, got ${JSON.stringify(url)}`);
}

function errorText(error: { name: string; message: string } | null | undefined, max = 90): string {
  if (!error) return '';
  const text = `${error.name}: ${error.message}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

async function main(): Promise<void> {
  const where = await resetDatabase(DATABASE_URL, SCHEMA);
  await rm(OUTBOX_DIR, { recursive: true, force: true });

  // The flaky partner: two 503s per request id, and one request id gets a slow answer (1.5 s) on top,
  // longer than the job's request timeout (exampleConfig.partnerRequestTimeoutMs, 1 s).
  const partner = await startPartnerServer({ failuresPerRequest: 2, slowOnce: new Set(['payout-1002']), slowMs: 1_500 });
  exampleConfig.partnerBaseUrl = partner.url;

  // Warden's own logs (JSON) go to stderr at level warn, so stdout stays readable.
  const logger = pino({ level: process.env.WARDEN_LOG_LEVEL || 'warn' }, pino.destination({ dest: 2, sync: true }));
  const warden = createWarden({ database: DATABASE_URL, schema: SCHEMA, jobs, logger });

  // Ctrl-C once: stop waiting, print what we have and shut down gracefully. Twice: exit at once.
  // (A long-running worker process would use `handleShutdownSignals(warden)` instead.)
  const interrupted = new AbortController();
  const onSignal = () => {
    if (interrupted.signal.aborted) process.exit(130);
    say('interrupted: shutting down gracefully (press Ctrl-C again to exit at once)');
    failures.push('interrupted before every job finished');
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    say(`Warden example on ${where}; partner API at ${partner.url}`);
    const migrated = await warden.migrate();
    say(`migrated: ${migrated.applied.join(', ') || 'nothing to apply'}`);

    // ---------------------------------------------------------------------------------------- events
    const maxAttempts = new Map<string, number>();
    const lastError = new Map<string, string>();
    warden.on('job:completed', (e) => say(`completed  ${e.job.name} #${e.job.id} on attempt ${e.attempt} (${e.durationMs} ms)`));
    warden.on('job:failed', (e) => lastError.set(e.job.id, errorText(e.error, 110)));
    warden.on('job:retry-scheduled', (e) =>
      say(`retry      ${e.job.name} #${e.job.id} attempt ${e.attempt}/${maxAttempts.get(e.job.id) ?? '?'} failed: ${lastError.get(e.job.id)}; next try in ${e.delayMs} ms`),
    );
    warden.on('job:dead', (e) => say(`DEAD       ${e.job.name} #${e.job.id} after attempt ${e.attempt} (${e.reason}): ${errorText(e.error, 110)}`));
    warden.on('job:rescued', (e) => say(`rescued    ${e.job.name} #${e.job.id} after its lease expired -> ${e.nextState}`));
    warden.on('job:stale-write-rejected', (e) => say(`stale      #${e.jobId}: ${e.write} with lease token ${e.leaseToken} rejected`));
    warden.on('worker:started', (e) => say(`worker started: queues ${e.queues.join(', ')}, concurrency ${e.concurrency}`));
    warden.on('worker:stopped', (e) => say(`worker stopped (${e.aborted} aborted)`));
    warden.on('error', (e) => {
      say(`ERROR      ${e.context}: ${e.error instanceof Error ? e.error.message : String(e.error)}`);
      failures.push(`Warden reported an internal error while ${e.context}`);
    });

    // ---------------------------------------------------------------------------------------- enqueue
    // Everything is enqueued before the worker starts, so the duplicate below is certain to find the first
    // job still active (a key is unique only among queued, retrying and running jobs).
    const enqueued = new Map<string, JobRow>();
    const add = (label: string, result: { id: string; duplicate: boolean; job: JobRow }) => {
      enqueued.set(result.id, result.job);
      maxAttempts.set(result.id, result.job.maxAttempts);
      say(`enqueued   ${result.job.name} #${result.id} ${label}${result.duplicate ? '  -> duplicate: true (the existing job)' : ''}`);
      return result;
    };

    const welcome = add('welcome email, key welcome:alice', await warden.enqueue(sendEmail, { to: 'alice@example.com', template: 'welcome' }, { key: 'welcome:alice' }));
    const welcomeAgain = add('same key again', await warden.enqueue(sendEmail, { to: 'alice@example.com', template: 'welcome' }, { key: 'welcome:alice' }));
    expect(welcomeAgain.duplicate && welcomeAgain.id === welcome.id, `the second enqueue with key welcome:alice should return job #${welcome.id} with duplicate: true`);
    add('receipt email', await warden.enqueue(sendEmail, { to: 'bob@example.com', template: 'receipt' }));
    const reminder = add(`reminder email, delay 2s`, await warden.enqueue(sendEmail, { to: 'carol@example.com', template: 'reminder' }, { delay: '2s' }));
    try {
      await warden.enqueue(sendEmail, { to: 'not-an-email', template: 'welcome' });
      expect(false, 'an email to "not-an-email" should be rejected at enqueue');
    } catch (error) {
      expect(error instanceof PayloadValidationError, `an invalid payload should throw PayloadValidationError, got ${String(error)}`);
      say(`rejected   send-email {to: "not-an-email"} at enqueue: ${(error as Error).name} (nothing written)`);
    }
    const report = add('sales report over 50,000 generated orders', await warden.enqueue(generateReport, { reportId: 'sales-2026-q1', orders: 50_000, seed: 42 }));
    const payouts = [
      add('payout-1001 (partner fails twice)', await warden.enqueue(callPartnerApi, { requestId: 'payout-1001', amountCents: 12_500 })),
      add('payout-1002 (partner fails twice, then is slow once)', await warden.enqueue(callPartnerApi, { requestId: 'payout-1002', amountCents: 4_200 })),
    ];
    const charge = add('card ending 0002 (always declined)', await warden.enqueue(chargeCard, { customerId: 'cus_42', amountCents: 9_900, cardLast4: '0002' }));

    // ---------------------------------------------------------------------------------------- run
    await warden.start({ concurrency: 5, pollInterval: '200ms' });
    const deadline = performance.now() + DEADLINE_MS;
    for (;;) {
      const { totals } = await warden.stats();
      if (totals.queued + totals.retrying + totals.running === 0) {
        say(`all jobs finished: ${totals.completed} completed, ${totals.dead} dead, ${totals.cancelled} cancelled`);
        break;
      }
      if (interrupted.signal.aborted) break;
      if (performance.now() > deadline) {
        failures.push(`jobs still unfinished after ${DEADLINE_MS / 1000}s: ${JSON.stringify(totals)}`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, STATS_POLL_MS));
    }
    // Stop the worker first, so every event of the last attempts has been printed before the summary.
    await warden.stop();

    // ---------------------------------------------------------------------------------------- summary
    const rows = (await warden.jobs.list({ limit: 100 })).sort((a, b) => Number(a.id) - Number(b.id));
    console.log('\nJobs');
    for (const line of table(
      ['id', 'job', 'queue', 'state', 'attempts', 'last error'],
      rows.map((r) => [`#${r.id}`, r.name, r.queue, r.state, `${r.attempt}/${r.maxAttempts}`, errorText(r.lastError, 80)]),
    )) console.log(`  ${line}`);

    for (const payout of payouts) {
      const job = rows.find((r) => r.id === payout.id);
      const attempts = await warden.jobs.attempts(payout.id);
      console.log(`\nAttempt history of call-partner-api #${payout.id} (${(job?.payload as { requestId?: string } | undefined)?.requestId})`);
      for (const line of table(
        ['attempt', 'lease', 'outcome', 'ran', 'error'],
        attempts.map((a) => [
          String(a.attempt),
          String(a.leaseToken),
          a.outcome,
          a.startedAt ? `${a.finishedAt.getTime() - a.startedAt.getTime()} ms` : '',
          errorText(a.error, 90),
        ]),
      )) console.log(`  ${line}`);
      expect(job?.state === 'completed', `call-partner-api #${payout.id} should be completed, is ${job?.state}`);
      expect(attempts.length === job?.attempt && attempts.filter((a) => a.outcome === 'completed').length === 1, `call-partner-api #${payout.id} should have one attempt row per attempt and exactly one completed`);
      expect((job?.attempt ?? 0) >= 3, `call-partner-api #${payout.id} should have needed at least 3 attempts (the partner fails twice), took ${job?.attempt}`);
    }
    console.log(`\nPartner API: ${partner.requests.length} requests (${partner.requests.map((r) => `${r.requestId}:${r.answer}`).join(' ')}); ${partner.payouts.size} payouts applied (one per idempotency key)`);
    expect(partner.payouts.size === payouts.length, `the partner should have applied exactly ${payouts.length} payouts, applied ${partner.payouts.size}`);

    // ---------------------------------------------------------------------------------------- checks
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [id, job] of enqueued) {
      if (job.name === 'charge-card') continue;
      expect(byId.get(id)?.state === 'completed', `${job.name} #${id} should be completed, is ${byId.get(id)?.state}`);
    }
    const dead = byId.get(charge.id);
    expect(dead?.state === 'dead' && dead.attempt === 1 && dead.lastError?.name === 'NonRetryableError', `charge-card #${charge.id} should be dead after 1 attempt with NonRetryableError`);
    const late = byId.get(reminder.id);
    if (late?.startedAt) {
      const delayMs = late.runAt.getTime() - late.createdAt.getTime();
      const waitedMs = late.startedAt.getTime() - late.createdAt.getTime();
      say(`delayed    reminder #${late.id} was due ${delayMs} ms after enqueue and started ${waitedMs} ms after enqueue`);
      expect(delayMs === 2_000 && late.startedAt.getTime() >= late.runAt.getTime(), `the delayed reminder should be due 2000 ms after enqueue and not start before, was due after ${delayMs} ms, started after ${waitedMs} ms`);
    }
    const outbox = (await readdir(OUTBOX_DIR).catch(() => [])).sort();
    say(`outbox     ${OUTBOX_DIR}/: ${outbox.join(', ')}`);
    expect(outbox.length === 3, `the outbox should hold 3 emails (welcome, receipt, reminder), holds ${outbox.length}`);
    const reportFile = `${REPORTS_DIR}/sales-2026-q1.json`;
    const reportDone = (await readdir(REPORTS_DIR).catch(() => [] as string[])).includes('sales-2026-q1.json');
    say(`report     ${reportFile}${reportDone ? '' : ' (missing)'} written by generate-report #${report.id}`);
    expect(reportDone, `generate-report #${report.id} should have written ${reportFile}`);
    say(`worker     ${JSON.stringify(warden.workerCounters)}`);
  } finally {
    await warden.close();
    await partner.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

try {
  await main();
} catch (error) {
  failures.push(`the example crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
if (failures.length === 0) {
  say('OK: every expectation held');
} else {
  say(`FAILED: ${failures.length} expectation(s) did not hold:`);
  for (const failure of failures) console.log(`  - ${failure}`);
}
process.exitCode = failures.length === 0 ? 0 : 1;
// Everything is closed by now, so Node exits by itself. If it does not, something still holds the event
// loop open: say so rather than hang (unref'd, so this timer itself never keeps the process alive).
setTimeout(() => {
  console.error('Expected the process to exit after close(), but something kept it alive; exiting.');
  process.exit(1);
}, 5_000).unref();
