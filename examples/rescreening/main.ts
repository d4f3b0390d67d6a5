/**
 * Warden's re-screening example: `npm run example:rescreening` (= `tsx examples/rescreening/main.ts`).
 *
 * Seeds 5,000 customers into the application's tables next to Warden's, starts a flaky fake screening service,
 * triggers the hourly re-screening schedule once, runs the worker until the run is finished, prints what
 * happened, and exits 0 when every expectation held (1 otherwise). See README.md in this folder.
 *
 * `--crash` (or `RESCREEN_CRASH=1`): the worker runs in a child process that is SIGKILLed once mid-run; a
 * fresh one resumes the run from its checkpoint. `--customers N` changes the number of customers, `--keep`
 * keeps the database instead of starting fresh. Other settings: see `config.ts`.
 * @module
 */
import { readOptions } from './config.js';
import { type DemoSummary, runRescreeningDemo } from './run-demo.js';

const t0 = performance.now();

/** Prints one line on stdout, prefixed with the time since start. */
function say(line: string): void {
  console.log(`+${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s  ${line}`);
}

/** The summary as aligned lines. */
function summaryLines(s: DemoSummary): string[] {
  const n = (v: number) => v.toLocaleString('en-US');
  const job = s.job;
  const st = s.service;
  const row = (label: string, value: string) => `  ${label.padEnd(26)}${value}`;
  const lines = [
    `Run #${s.runId} as of ${s.asOf.toISOString()}: ${job?.state ?? 'missing'} after ${job?.attempt ?? 0} attempt(s), ${(s.elapsedMs / 1000).toFixed(1)} s in all`,
    row('customers due', `${n(s.due)} of ${n(s.customers)}`),
    row('customers screened', `${n(s.report.rows)} result rows for ${n(s.report.distinctCustomers)} customers (duplicates: ${s.report.duplicateCustomers}; still due: ${s.report.stillDue})`),
    row('hits', n(s.report.hits)),
    row('job progress', `${job?.progress ? `${n(job.progress.done)}/${job.progress.total === null ? '?' : n(job.progress.total)}` : 'none'}; ${s.stepsRecorded} steps recorded`),
    row('requests with the results', `${n(s.report.requests)} (retries in place: ${n(s.report.requests - s.report.rows)})`),
    row('service calls', `${n(st.calls)} for ${n(st.distinctKeys)} distinct idempotency keys`),
    row('  503 / hung / replayed', `${n(st.unavailable)} / ${n(st.hung)} / ${n(st.replays)} (a replay: a retried key answered from the service's store)`),
    row('  of unfinished chunks', `${n(st.calls - s.report.requests)} calls made by attempts that did not commit their chunk (killed, or a step that failed)`),
    row('  screenings billed', `${n(st.screenings)}; customers screened twice: ${st.customersScreenedTwice}`),
    row('run summary row', s.report.run ? `screened ${n(s.report.run.screened)}, hits ${n(s.report.run.hits)}, requests ${n(s.report.run.requests)}, written by attempt ${s.report.run.finishedAttempt}` : 'missing'),
  ];
  if (s.crashes > 0) lines.push(row('worker processes killed', String(s.crashes)));
  lines.push('  attempts:');
  for (const a of s.attempts) {
    const ran = a.startedAt ? `${a.finishedAt.getTime() - a.startedAt.getTime()} ms` : '';
    lines.push(`    #${a.attempt} lease ${a.leaseToken} ${a.outcome.padEnd(9)} ${ran.padStart(8)}  ${a.error ? `${a.error.name}: ${a.error.message}`.slice(0, 100) : ''}`.trimEnd());
  }
  lines.push('  schedule ticks (newest first):');
  for (const t of s.ticks) lines.push(`    ${t.tickAt.toISOString()} ${t.kind.padEnd(9)} ${t.outcome.padEnd(7)} job #${t.jobId ?? '-'} ${t.jobState ?? ''}${t.actor ? ` by ${t.actor}` : ''}`.trimEnd());
  return lines;
}

let exitCode = 1;
try {
  const options = readOptions();
  say(`re-screening ${options.customers.toLocaleString('en-US')} customers in chunks of ${options.chunkSize}${options.crash ? ', killing the worker once mid-run' : ''}`);
  const summary = await runRescreeningDemo(options, say);
  console.log('');
  for (const line of summaryLines(summary)) console.log(line);
  console.log('');
  if (summary.failures.length === 0) {
    say('OK: exactly one result per due customer, and no customer screened twice');
    exitCode = 0;
  } else {
    say(`FAILED: ${summary.failures.length} expectation(s) did not hold:`);
    for (const failure of summary.failures) console.log(`  - ${failure}`);
  }
} catch (error) {
  say(`the example crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
process.exitCode = exitCode;
// Everything is closed by now, so Node exits by itself; if something still holds the event loop, say so.
setTimeout(() => {
  console.error('Expected the process to exit after everything was closed, but something kept it alive; exiting.');
  process.exit(1);
}, 5_000).unref();
