/**
 * Writes a run as markdown: machine, settings, the targets with met/missed, and one table per workload with
 * each figure's median and range and each system's ratio against graphile-worker.
 * @module
 */
import type { RunResult, SystemOutcome } from './results.js';
import type { Figure } from './stats.js';
import { judgeTargets } from './targets.js';
import type { MetricSpec } from './workloads/workload.js';

/** A number with thousands separators and `digits` decimals. */
function num(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)"; a single value (one repetition) without a range. */
function cell(f: Figure | undefined, digits = 0): string {
  if (!f || Number.isNaN(f.median)) return '—';
  const finite = f.values.filter(Number.isFinite);
  if (finite.length <= 1 || f.min === f.max) return num(f.median, digits);
  return `${num(f.median, digits)} (${num(f.min, digits)}–${num(f.max, digits)})`;
}

/** The most telling line of a failure: the underlying error (e.g. a worker child's SyntaxError), not the wrapper. */
function errorLine(error: string): string {
  const lines = error.split('\n').map((l) => l.trim());
  return lines.find((l) => /^[A-Za-z]*Error: /.test(l) && !l.includes('Worker child failed')) ?? lines[0] ?? '';
}

function ratioCell(outcome: SystemOutcome, reference: SystemOutcome | undefined, metric: MetricSpec): string {
  const mine = outcome.figures[metric.key]?.median;
  const ref = reference?.figures[metric.key]?.median;
  if (mine === undefined || ref === undefined || !Number.isFinite(mine) || !Number.isFinite(ref) || ref === 0) return '—';
  return `${(mine / ref).toFixed(2)}×`;
}

function workloadTable(run: RunResult, index: number): string[] {
  const { workload, outcomes } = run.workloads[index]!;
  const lines = [`## ${workload.title}`, '', workload.method(run.settings), ''];
  if (workload.unavailable) {
    lines.push(`**${workload.unavailable[0]!.toUpperCase()}${workload.unavailable.slice(1)}.** No figures.`, '');
    return lines;
  }
  const reference = outcomes.find((o) => o.system === 'graphile' && o.status === 'ok');
  const ratioMetrics = workload.metrics.filter((m) => m.ratio);
  const header = ['system', ...workload.metrics.map((m) => m.label), ...ratioMetrics.map((m) => `${m.label.replace(/ \(.*\)$/, '')} ÷ graphile (${m.better === 'higher' ? 'higher' : 'lower'} is better)`)];
  lines.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  const notes: string[] = [];
  for (const outcome of outcomes) {
    const label = run.systems.find((s) => s.name === outcome.system)?.label ?? outcome.system;
    if (outcome.status === 'na') {
      notes.push(`${label}: ${outcome.reason}.`);
      continue;
    }
    const cells = workload.metrics.map((m) => cell(outcome.figures[m.key], m.digits));
    const ratios = ratioMetrics.map((m) => ratioCell(outcome, reference, m));
    lines.push(`| ${label}${outcome.status === 'error' ? ' ⚠' : ''} | ${[...cells, ...ratios].join(' | ')} |`);
    for (const error of outcome.errors) notes.push(`${label}: a repetition failed (not retried; its figures are from the others): ${errorLine(error)}`);
    const missing = outcome.figures.missing;
    if (missing && missing.max > 0 && !workload.metrics.some((m) => m.key === 'missing')) notes.push(`${label}: ${num(missing.max)} jobs never ran in the worst repetition.`);
  }
  lines.push('');
  if (notes.length > 0) lines.push(...notes.map((n) => `- ${n}`), '');
  return lines;
}

/** The whole report. */
export function renderReport(run: RunResult): string {
  const { machine: m, settings: s } = run;
  const minutes = (run.finishedAt.getTime() - run.startedAt.getTime()) / 60_000;
  const lines = [
    '# Benchmark results: Warden against graphile-worker, pg-boss and BullMQ',
    '',
    `Run ${run.startedAt.toISOString()} (${minutes.toFixed(1)} min) with \`npm run bench${s.quick ? ' -- --quick' : ''}\`.`,
    '',
    `**Machine:** ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres}; Redis ${m.redis}. ` +
      `PostgreSQL and Redis run on the same machine with their packaged configuration. 1-minute load average at start ${m.loadAtStart}, at end ${run.loadAtEnd}.`,
    '',
    `**Warden code measured:** ${run.code}. Worker children load Warden from \`src/\` through tsx when they start, so the run measures the tree as it was then.`,
    '',
    '**Noise:** this is a shared 2-core machine: other agents may run test suites during the run, so single figures can move by tens of percent. ' +
      'Each figure is the median of the repetitions with its range (min–max) in brackets; repetitions are interleaved across systems so a burst of outside load does not land on one system only, and before each one the run forces a PostgreSQL `CHECKPOINT` and waits (at most 10 s) until the CPUs are 85 % idle, so no system pays for the background work the previous one left. Ratios are of medians from this same run.',
    '',
    '## Settings',
    '',
    `- Repetitions per figure: ${s.repetitions}. Each repetition of each system runs on a fresh store: a new PostgreSQL database (\`CREATE DATABASE\`, dropped afterwards), a new SQLite file, or a new Redis key prefix (obliterated afterwards).`,
    `- Jobs: W1/W4/W5 ${num(s.jobs)}; W2 ${num(s.single)}; W3 ${num(s.latencyJobs)} (+${s.latencyWarmup} warm-up) every ${s.latencyIntervalMs} ms; W5 ${num(s.retained)} retained finished jobs (BENCH_W5_RETAINED) and a ${num(s.longDrain)}-job memory drain (BENCH_W5_DRAIN).`,
    `- Every system: concurrency ${s.concurrency}, the same payload (\`{ i }\`, W3 \`{ i, t }\`), a no-op handler that counts the execution. Workers run as child processes (\`node --import tsx bench/worker-child.ts\`), one per worker, loading only their own library; the benchmark process enqueues.`,
    ...run.systems.map((sys) => `- **${sys.label}**: ${sys.describe}`),
    '',
    '## Targets (issue 3)',
    '',
    '| target | measured (medians) | verdict |',
    '|---|---|---|',
    ...judgeTargets(run).map((t) => `| ${t.target} | ${t.measured} | ${t.verdict === 'met' ? '**met**' : t.verdict === 'missed' ? '**missed**' : t.verdict} |`),
    '',
  ];
  for (let i = 0; i < run.workloads.length; i++) lines.push(...workloadTable(run, i));
  lines.push('![W1 and W3](results.svg)', '');
  return lines.join('\n');
}
