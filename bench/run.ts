/**
 * `npm run bench`: Warden on PostgreSQL and SQLite side by side with graphile-worker 0.18, pg-boss 12, BullMQ 6
 * and a bare-SQL ceiling, in one run on one machine (issue 3). Writes bench/results.md and bench/results.svg.
 *
 * Options (flags or environment): `--only W1,W3` (BENCH_ONLY), `--systems warden-pg,graphile` (BENCH_SYSTEMS),
 * `--quick` (BENCH_QUICK=1: small sizes, one repetition), `--reps N`, `--out DIR` (a partial or quick run
 * writes nothing unless given), `--no-write`, `--cpu-prof DIR` (worker children under `node --cpu-prof`),
 * `--alloc-prof DIR` (worker children sample what they allocate, freed objects included: `alloc-profiler.ts`),
 * `--child-node-flags="--trace-gc …"` (BENCH_CHILD_NODE_FLAGS; extra `node` flags for every worker child; the `=` is
 * needed since the value starts with a dash).
 * Sizes: BENCH_JOBS, BENCH_SINGLE, BENCH_W3_JOBS, BENCH_W5_RETAINED, BENCH_W5_DRAIN, BENCH_CONCURRENCY, … (settings.ts).
 * Warden's tuning: BENCH_WARDEN_PREFETCH (default 500; 0 measures the out-of-the-box default), BENCH_WARDEN_POLL.
 * The console shows each repetition's figures and, for every drain, where its time went (each worker's start
 * call and return, its first and last job, the store reporting empty; ms after the first start call).
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { renderChart } from './chart.js';
import { describeMachine } from './machine.js';
import { describeCode } from './provenance.js';
import { renderReport } from './report.js';
import { settle } from './settle.js';
import type { RunResult, SystemOutcome, WorkloadOutcome } from './results.js';
import { readSettings, type WorkloadId } from './settings.js';
import { figure } from './stats.js';
import { loadSystem } from './systems/registry.js';
import { judgeTargets } from './targets.js';
import { killAllWorkers } from './worker-process.js';
import { w1Drain } from './workloads/w1-drain.js';
import { w2SingleEnqueue } from './workloads/w2-single-enqueue.js';
import { w3Latency } from './workloads/w3-latency.js';
import { w4TwoWorkers } from './workloads/w4-two-workers.js';
import { w5Retained } from './workloads/w5-retained.js';
import { w6Audit } from './workloads/w6-audit.js';
import type { Workload } from './workloads/workload.js';

const WORKLOADS: Record<WorkloadId, Workload> = { W1: w1Drain, W2: w2SingleEnqueue, W3: w3Latency, W4: w4TwoWorkers, W5: w5Retained, W6: w6Audit };

const settings = readSettings();
process.on('SIGINT', () => {
  killAllWorkers();
  process.exit(130);
});
if (settings.cpuProfDir) await mkdir(settings.cpuProfDir, { recursive: true });
if (settings.allocProfDir) await mkdir(settings.allocProfDir, { recursive: true });
const machine = await describeMachine(settings);
const systems = await Promise.all(settings.systems.map((name) => loadSystem(name, settings)));
const code = describeCode();
const startedAt = new Date();
console.log(`bench: ${settings.workloads.join(',')} × ${settings.systems.join(',')}, ${settings.repetitions} repetition(s)${settings.quick ? ' (quick)' : ''}; ${machine.cores} cores, Node ${machine.node}, PostgreSQL ${machine.postgres}, Redis ${machine.redis}`);

const outcomes: WorkloadOutcome[] = [];
for (const id of settings.workloads) {
  const workload = WORKLOADS[id];
  const samples = new Map<string, Record<string, number[]>>();
  const errors = new Map<string, string[]>();
  const runnable = systems.filter((s) => !workload.unavailable && s.workloads.includes(id));
  const reps = workload.repetitions?.(settings) ?? settings.repetitions;
  console.log(`\n${workload.title}`);
  // Repetitions are interleaved across systems: outside load during one stretch then touches every system.
  for (let rep = 1; rep <= reps; rep++) {
    for (const system of runnable) {
      const runId = `${system.name.replace(/-/g, '')}_${id.toLowerCase()}_${rep}_${process.pid}`;
      try {
        await settle(settings.pgUrl);
        const values = await workload.measure({ settings, system, id: runId, rep });
        const bySystem = samples.get(system.name) ?? {};
        for (const [key, value] of Object.entries(values)) (bySystem[key] ??= []).push(value);
        samples.set(system.name, bySystem);
        console.log(`  rep ${rep} ${system.name.padEnd(13)} ${Object.entries(values).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`).join(' ')}`);
      } catch (error) {
        killAllWorkers();
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        errors.set(system.name, [...(errors.get(system.name) ?? []), message]);
        console.error(`  rep ${rep} ${system.name} FAILED: ${message}`);
      }
    }
  }
  outcomes.push({
    workload,
    outcomes: systems.map((system): SystemOutcome => {
      if (workload.unavailable) return { system: system.name, status: 'na', reason: workload.unavailable, figures: {}, errors: [] };
      if (!system.workloads.includes(id)) return { system: system.name, status: 'na', reason: system.notApplicable?.[id] ?? 'not applicable', figures: {}, errors: [] };
      const figures = Object.fromEntries(Object.entries(samples.get(system.name) ?? {}).map(([k, v]) => [k, figure(v)]));
      const failed = errors.get(system.name) ?? [];
      return { system: system.name, status: failed.length > 0 ? 'error' : 'ok', figures, errors: failed };
    }),
  });
}

const run: RunResult = { settings, machine, code, startedAt, finishedAt: new Date(), loadAtEnd: Math.round(loadavg()[0]! * 100) / 100, systems, workloads: outcomes };
const markdown = renderReport(run);
console.log(`\n${judgeTargets(run).map((t) => `${t.verdict.padEnd(12)} ${t.target}: ${t.measured}`).join('\n')}`);
if (settings.outDir) {
  await mkdir(settings.outDir, { recursive: true });
  await writeFile(join(settings.outDir, 'results.md'), markdown);
  await writeFile(join(settings.outDir, 'results.svg'), renderChart(run));
  console.log(`\nwrote ${join(settings.outDir, 'results.md')} and results.svg`);
} else {
  console.log('\n(partial or quick run: nothing written; pass --out DIR to keep the report)');
}
