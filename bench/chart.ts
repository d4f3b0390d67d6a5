/**
 * The run's chart as hand-written SVG (no chart dependency): W1 drain and bulk enqueue rates (linear), and W3
 * latency p50/p99 (log scale, since queues differ by orders of magnitude). Bars are medians; whiskers the
 * range over repetitions.
 * @module
 */
import type { RunResult } from './results.js';
import type { Figure } from './stats.js';

interface Series {
  name: string;
  color: string;
}

interface Panel {
  title: string;
  unit: string;
  log: boolean;
  series: Series[];
  rows: { label: string; values: (Figure | undefined)[] }[];
}

const WIDTH = 860;
const LABEL_W = 210;
const PLOT_W = WIDTH - LABEL_W - 90;
const BAR_H = 12;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** "Nice" axis ticks: linear steps of 1/2/5×10^k, or powers of ten on a log axis. */
function ticks(max: number, log: boolean, min: number): number[] {
  if (log) {
    const out: number[] = [];
    for (let p = Math.floor(Math.log10(min)); 10 ** p <= max * 1.0001; p++) out.push(10 ** p);
    return out;
  }
  const raw = max / 5;
  const base = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * base).find((s) => s >= raw)!;
  return Array.from({ length: Math.floor(max / step) + 1 }, (_, i) => i * step);
}

function panel(p: Panel, top: number): { svg: string; height: number } {
  const all = p.rows.flatMap((r) => r.values.flatMap((f) => (f ? [f.max, f.median] : []))).filter((v) => Number.isFinite(v) && v > 0);
  const dataMax = all.length ? Math.max(...all) : 1;
  const lo = p.log ? 10 ** Math.floor(Math.log10(Math.min(...all, 1))) : 0;
  const linear = ticks(dataMax * 1.05, false, 0);
  const step = linear[1] ?? 1;
  const hi = p.log ? 10 ** Math.ceil(Math.log10(dataMax)) : Math.ceil((dataMax * 1.05) / step) * step;
  const x = (v: number) => LABEL_W + (p.log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi) * PLOT_W;
  const groupH = p.series.length * (BAR_H + 2) + 10;
  const plotTop = top + 44;
  const height = 44 + p.rows.length * groupH + 34;
  const out: string[] = [
    `<text x="${LABEL_W}" y="${top + 18}" font-size="15" font-weight="600" ${FONT}>${escape(p.title)}</text>`,
    ...p.series.map((s, i) => `<rect x="${LABEL_W + i * 150}" y="${top + 27}" width="10" height="10" fill="${s.color}"/><text x="${LABEL_W + i * 150 + 14}" y="${top + 36}" font-size="11" ${FONT}>${escape(s.name)}</text>`),
  ];
  for (const t of ticks(hi, p.log, lo).filter((t) => t <= hi)) {
    const tx = x(t);
    out.push(`<line x1="${tx}" y1="${plotTop - 4}" x2="${tx}" y2="${plotTop + p.rows.length * groupH}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${tx}" y="${plotTop + p.rows.length * groupH + 14}" font-size="10" text-anchor="middle" fill="#555" ${FONT}>${fmt(t)}</text>`);
  }
  out.push(`<text x="${LABEL_W + PLOT_W / 2}" y="${plotTop + p.rows.length * groupH + 28}" font-size="11" text-anchor="middle" fill="#333" ${FONT}>${escape(p.unit)}${p.log ? ' (log scale)' : ''}</text>`);
  p.rows.forEach((row, r) => {
    const gy = plotTop + r * groupH;
    out.push(`<text x="${LABEL_W - 8}" y="${gy + groupH / 2}" font-size="12" text-anchor="end" ${FONT}>${escape(row.label)}</text>`);
    row.values.forEach((f, i) => {
      const y = gy + i * (BAR_H + 2);
      if (!f || !Number.isFinite(f.median)) {
        out.push(`<text x="${LABEL_W + 4}" y="${y + BAR_H - 2}" font-size="10" fill="#888" ${FONT}>not measured</text>`);
        return;
      }
      out.push(`<rect x="${LABEL_W}" y="${y}" width="${Math.max(1, x(f.median) - LABEL_W)}" height="${BAR_H}" fill="${p.series[i]!.color}"/>`);
      if (f.min !== f.max) out.push(`<line x1="${x(f.min)}" y1="${y + BAR_H / 2}" x2="${x(f.max)}" y2="${y + BAR_H / 2}" stroke="#222" stroke-width="1"/><line x1="${x(f.min)}" y1="${y + 2}" x2="${x(f.min)}" y2="${y + BAR_H - 2}" stroke="#222"/><line x1="${x(f.max)}" y1="${y + 2}" x2="${x(f.max)}" y2="${y + BAR_H - 2}" stroke="#222"/>`);
      out.push(`<text x="${Math.max(x(f.max), x(f.median)) + 4}" y="${y + BAR_H - 2}" font-size="10" fill="#333" ${FONT}>${fmt(f.median)}</text>`);
    });
  });
  return { svg: out.join('\n'), height };
}

/** The SVG for W1 and W3 of `run`; panels for workloads not run are left out. */
export function renderChart(run: RunResult): string {
  const panels: Panel[] = [];
  const rowsOf = (id: string, keys: string[]) => {
    const w = run.workloads.find((x) => x.workload.id === id);
    if (!w) return [];
    return w.outcomes.filter((o) => o.status !== 'na').map((o) => ({
      label: run.systems.find((s) => s.name === o.system)?.label ?? o.system,
      values: keys.map((k) => o.figures[k]),
    }));
  };
  const jobs = run.settings.jobs.toLocaleString('en-US');
  const drain = rowsOf('W1', ['drain']);
  if (drain.length) panels.push({ title: `W1 drain: ${jobs} jobs, one worker process, concurrency ${run.settings.concurrency}`, unit: 'jobs/s (higher is better)', log: false, series: [{ name: 'drain', color: '#2b6cb0' }], rows: drain });
  const enqueue = rowsOf('W1', ['enqueue']);
  if (enqueue.length) panels.push({ title: `W1 bulk enqueue: ${jobs} jobs in calls of ${run.settings.bulkChunk.toLocaleString('en-US')}`, unit: 'jobs/s (higher is better)', log: false, series: [{ name: 'bulk enqueue', color: '#90cdf4' }], rows: enqueue });
  const w3 = rowsOf('W3', ['p50', 'p99']);
  if (w3.length) panels.push({ title: `W3: enqueue-to-start latency, idle worker in another process`, unit: 'ms (lower is better)', log: true, series: [{ name: 'p50', color: '#2f855a' }, { name: 'p99', color: '#9ae6b4' }], rows: w3 });
  let top = 10;
  const parts: string[] = [];
  for (const p of panels) {
    const { svg, height } = panel(p, top);
    parts.push(svg);
    top += height + 16;
  }
  const footer = `Medians of ${run.settings.repetitions} repetition(s); whiskers: min–max. ${run.machine.cores} cores, Node ${run.machine.node}, PostgreSQL ${run.machine.postgres.split(' ')[0]}, Redis ${run.machine.redis}; ${run.startedAt.toISOString().slice(0, 10)}.`;
  parts.push(`<text x="10" y="${top + 4}" font-size="10" fill="#666" ${FONT}>${escape(footer)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top + 16}" viewBox="0 0 ${WIDTH} ${top + 16}">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}
