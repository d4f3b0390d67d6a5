/**
 * Entry point of a worker child process (`node --import tsx bench/worker-child.ts`). It loads one system, runs
 * its worker with the counting no-op handler, and reports over IPC: when it started, its running count
 * (throttled), the moment it has run the expected number of jobs, and at stop every execution, W3 latencies
 * and RSS samples. Nothing else runs in this process, so its CPU and memory are the worker's.
 * @module
 */
import { now } from './clock.js';
import { loadSystem } from './systems/registry.js';
import type { BenchPayload, BenchSystem, RunningWorker, StoreTarget } from './systems/system.js';
import type { ChildReport, LoadCommand, StartCommand } from './worker-protocol.js';

function send(message: ChildReport): void {
  process.send!(message);
}

let system: BenchSystem | null = null;
let worker: RunningWorker | null = null;
let count = 0;
let firstAt: number | null = null;
const executions: number[] = [];
const latencies: [number, number][] = [];
const rss: [number, number, number][] = [];
let progressTimer: NodeJS.Timeout | null = null;
let rssTimer: NodeJS.Timeout | null = null;

async function load(command: LoadCommand): Promise<void> {
  system = await loadSystem(command.system, command.settings);
  send({ type: 'loaded', at: now() });
}

async function start(command: StartCommand): Promise<void> {
  const target: StoreTarget = command.target;
  if (system === null) throw new Error(`Expected a "load" command before "start", got none`);
  let reported = 0;
  // Progress is sent at most every `progressMs`, so IPC costs the worker nothing per job.
  progressTimer = setInterval(() => {
    if (count !== reported) {
      reported = count;
      send({ type: 'progress', count, at: now() });
    }
  }, command.progressMs);
  if (command.rssEveryMs > 0) {
    // After a full collection, so a sample is memory the worker holds, not garbage V8 has not collected yet: V8
    // lets old-space garbage pile up between major collections, a sawtooth whose period (about 1.2M jobs on the
    // SQLite worker: 141 -> 202 -> 171 MB over a 3M-job drain, flat after) is as long as the whole drain, which a
    // trend line then reads as growth.
    const collect = (globalThis as { gc?: () => void }).gc;
    rssTimer = setInterval(() => {
      collect?.();
      rss.push([now(), count, process.memoryUsage.rss()]);
    }, command.rssEveryMs);
  }
  const onJob = (payload: BenchPayload) => {
    const at = now();
    count++;
    if (count === 1) firstAt = at;
    if (command.trackExecutions) executions.push(payload.i);
    if (command.recordLatency && payload.t !== undefined) latencies.push([payload.i, at - payload.t]);
    if (count === command.expected) send({ type: 'handled', count, at });
  };
  const startedAt = now();
  worker = await system.startWorker(target, { concurrency: command.concurrency, onJob });
  send({ type: 'started', startedAt, readyAt: now() });
}

async function stop(): Promise<void> {
  await worker?.stop();
  if (progressTimer) clearInterval(progressTimer);
  if (rssTimer) clearInterval(rssTimer);
  // The report can be large (an execution index per job): disconnect only once it has gone out, or it is lost.
  await new Promise<void>((resolve, reject) => {
    process.send!({ type: 'stopped', firstAt, count, executions, latencies, rss, at: now() } satisfies ChildReport, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });
  // Exit on our own (not by a signal), so `--cpu-prof` writes its profile.
  process.disconnect();
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('message', (message: ({ cmd: 'load' } & LoadCommand) | ({ cmd: 'start' } & StartCommand) | { cmd: 'stop' }) => {
  const run = message.cmd === 'load' ? load(message) : message.cmd === 'start' ? start(message) : stop();
  run.catch((error: unknown) => {
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    setTimeout(() => process.exit(1), 100);
  });
});
send({ type: 'forked', at: now() });
