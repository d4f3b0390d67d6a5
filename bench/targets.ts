/**
 * The targets of issue 3, checked against the medians of one run (ratios within the same run).
 * @module
 */
import { median, type RunResult } from './results.js';

/** One target's verdict. */
export interface TargetVerdict {
  target: string;
  measured: string;
  verdict: 'met' | 'missed' | 'not measured';
}

const x = (n: number) => `${n.toFixed(2)}×`;
const ms = (n: number) => `${n.toFixed(1)} ms`;
/** Two latencies compared, to one decimal, or two where one decimal would show a tie that the verdict broke. */
const msPair = (a: number, b: number) => {
  const digits = a !== b && a.toFixed(1) === b.toFixed(1) ? 2 : 1;
  return `${a.toFixed(digits)} ms vs ${b.toFixed(digits)} ms`;
};

/** Every target of the issue, met or missed, with the figures it was judged on. */
export function judgeTargets(run: RunResult): TargetVerdict[] {
  const m = (w: string, s: Parameters<typeof median>[2], k: string) => median(run, w, s, k);
  const verdicts: TargetVerdict[] = [];
  const check = (target: string, values: (number | undefined)[], judge: (...v: number[]) => [boolean, string]) => {
    if (values.some((v) => v === undefined)) {
      verdicts.push({ target, measured: '—', verdict: 'not measured' });
      return;
    }
    const [ok, measured] = judge(...(values as number[]));
    verdicts.push({ target, measured, verdict: ok ? 'met' : 'missed' });
  };
  check('Warden-PostgreSQL W1 drain ≥ 1.5× graphile-worker', [m('W1', 'warden-pg', 'drain'), m('W1', 'graphile', 'drain')], (w, g) => [w >= 1.5 * g, x(w / g)]);
  check('Warden-PostgreSQL W2 ≥ 2× graphile-worker', [m('W2', 'warden-pg', 'rate'), m('W2', 'graphile', 'rate')], (w, g) => [w >= 2 * g, x(w / g)]);
  check('Warden-PostgreSQL W3 p50 ≤ BullMQ p50', [m('W3', 'warden-pg', 'p50'), m('W3', 'bullmq', 'p50')], (w, b) => [w <= b, msPair(w, b)]);
  check('Warden-PostgreSQL W3 p99 ≤ graphile-worker p99', [m('W3', 'warden-pg', 'p99'), m('W3', 'graphile', 'p99')], (w, g) => [w <= g, msPair(w, g)]);
  check('Warden-PostgreSQL W4 ≥ graphile-worker, 0 duplicates', [m('W4', 'warden-pg', 'drain'), m('W4', 'graphile', 'drain'), maxOf(run, 'W4', 'warden-pg', 'duplicates')], (w, g, d) => [w >= g && d === 0, `${x(w / g)}, ${d} duplicates (worst repetition)`]);
  check('Warden-SQLite W1 drain ≥ 2× graphile-worker', [m('W1', 'warden-sqlite', 'drain'), m('W1', 'graphile', 'drain')], (w, g) => [w >= 2 * g, x(w / g)]);
  check('Warden-SQLite W2 ≥ BullMQ', [m('W2', 'warden-sqlite', 'rate'), m('W2', 'bullmq', 'rate')], (w, b) => [w >= b, x(w / b)]);
  check('Warden-SQLite W3 p99 ≤ 10 ms across processes', [m('W3', 'warden-sqlite', 'p99')], (w) => [w <= 10, ms(w)]);
  for (const [system, name] of [['warden-pg', 'PostgreSQL'], ['warden-sqlite', 'SQLite']] as const) {
    check(`W5 Warden-${name}: drain with retained rows ≥ 90% of empty`, [m('W5', system, 'ratio')], (r) => [r >= 90, `${r.toFixed(1)}%`]);
    // "Flat" is judged as less than 1 MB of RSS growth per 100,000 jobs after warm-up (samples taken after a full GC).
    check(`W5 Warden-${name}: worker memory flat (< 1 MB growth per 100k jobs)`, [m('W5', system, 'growth'), m('W5', system, 'growthLate'), m('W5', system, 'rssStart'), m('W5', system, 'rssEnd')], (g, late, s, e) => [g < 1, `${g.toFixed(2)} MB/100k jobs (second half alone ${late.toFixed(2)}; ${s.toFixed(0)} → ${e.toFixed(0)} MB)`]);
  }
  for (const [system, name] of [['warden-pg', 'PostgreSQL'], ['warden-sqlite', 'SQLite']] as const) {
    check(`W6 Warden-${name} with the full audit trail ≥ 1.0× graphile-worker`, [m('W6', system, 'drain'), m('W6', 'graphile', 'drain')], (w, g) => [w >= g, x(w / g)]);
  }
  return verdicts;
}

function maxOf(run: RunResult, workload: string, system: Parameters<typeof median>[2], metric: string): number | undefined {
  const figure = run.workloads.find((w) => w.workload.id === workload)?.outcomes.find((o) => o.system === system)?.figures[metric];
  return figure === undefined || Number.isNaN(figure.max) ? undefined : figure.max;
}
