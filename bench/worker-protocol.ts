/**
 * The messages between the benchmark process and its worker children (Node IPC, JSON).
 * @module
 */
import type { BenchSettings } from './settings.js';
import type { StoreTarget } from './systems/system.js';

/**
 * Sent to a child once it has forked: load the system's module (the library it runs) now, so neither the tsx
 * transpile nor the library's import lands in a measurement: in W4 the second child would otherwise still be
 * loading while the first drains (measured: 28–134 ms after it), taking a core from it.
 */
export interface LoadCommand {
  settings: BenchSettings;
  system: StoreTarget['system'];
}

/** Sent to a child to start its worker. */
export interface StartCommand {
  settings: BenchSettings;
  target: StoreTarget;
  concurrency: number;
  /** The child reports `handled` when it has run this many jobs (null: never, e.g. one of two W4 workers). */
  expected: number | null;
  /** Record each execution's payload index (off for W5's long drain, whose memory must be the worker's alone). */
  trackExecutions: boolean;
  /** Record enqueue-to-start latency from each payload's `t` (W3). */
  recordLatency: boolean;
  /** How often the running count is reported. */
  progressMs: number;
  /** How often RSS is sampled; 0 = never. */
  rssEveryMs: number;
}

/** What a child reports. Times are on the shared clock (see clock.ts). */
export type ChildReport =
  | { type: 'forked'; at: number }
  | { type: 'loaded'; at: number }
  | { type: 'started'; startedAt: number; readyAt: number }
  | { type: 'progress'; count: number; at: number }
  | { type: 'handled'; count: number; at: number }
  | {
      type: 'stopped';
      count: number;
      /** When the child ran its first job (null if it ran none). */
      firstAt: number | null;
      /** The payload index `i` of every execution, in order. */
      executions: number[];
      /** [i, enqueue-to-start ms] per execution (W3 only). */
      latencies: [number, number][];
      /** [time, jobs run so far, RSS bytes] samples. */
      rss: [number, number, number][];
      at: number;
    }
  | { type: 'error'; message: string };
