/**
 * The benchmark process's handle on one worker child: fork it, start its worker, follow its count, stop it
 * and collect what it recorded. A child that fails or is left behind is killed by its own pid.
 * @module
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './clock.js';
import type { BenchSettings } from './settings.js';
import type { StoreTarget } from './systems/system.js';
import type { ChildReport, LoadCommand, StartCommand } from './worker-protocol.js';

type Stopped = Extract<ChildReport, { type: 'stopped' }>;
const CHILD = fileURLToPath(new URL('./worker-child.ts', import.meta.url));
/** Preloaded into each child with `--alloc-prof`. */
const ALLOC_PROFILER = fileURLToPath(new URL('./alloc-profiler.ts', import.meta.url));
const live = new Set<WorkerProcess>();

/**
 * Options of one child. `profileName` names its profiles: `node --cpu-prof` when settings.cpuProfDir is set, the
 * allocation sampler (`alloc-profiler.ts`) when settings.allocProfDir is.
 */
export interface WorkerProcessOptions {
  expected: number | null;
  recordLatency?: boolean;
  /** @default true */
  trackExecutions?: boolean;
  rssEveryMs?: number;
  profileName?: string;
}

/** One worker child process. */
export class WorkerProcess {
  readonly #proc: ChildProcess;
  readonly #reports: ChildReport[] = [];
  #exited = false;
  #stderr = '';
  /** The child's latest running count. */
  count = 0;
  /** When the child ran its `expected`-th job (shared clock), once it has. */
  handledAt: number | null = null;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
    proc.on('message', (report: ChildReport) => {
      this.#reports.push(report);
      if (report.type === 'progress' || report.type === 'handled') this.count = Math.max(this.count, report.count);
      if (report.type === 'handled') this.handledAt = report.at;
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4_000);
    });
    proc.on('exit', () => {
      this.#exited = true;
      live.delete(this);
    });
  }

  /**
   * Forks a child and waits until it has loaded its modules and its system's (tsx start-up and the library's
   * import are not part of any measurement).
   */
  static async spawn(settings: BenchSettings, options: WorkerProcessOptions & { target: StoreTarget }, start: Omit<StartCommand, 'settings' | 'target' | 'expected' | 'recordLatency' | 'trackExecutions' | 'rssEveryMs' | 'progressMs'>): Promise<PendingStart> {
    const profile = options.profileName && settings.cpuProfDir
      ? ['--cpu-prof', '--cpu-prof-dir', settings.cpuProfDir, '--cpu-prof-name', `${options.profileName}.cpuprofile`]
      : [];
    const allocations = options.profileName && settings.allocProfDir ? ['--import', ALLOC_PROFILER] : [];
    const env = allocations.length > 0 ? { ...process.env, BENCH_ALLOC_PROF_DIR: settings.allocProfDir!, BENCH_ALLOC_PROF_NAME: options.profileName } : process.env;
    // A child sampling its memory collects garbage before each sample (see worker-child.ts).
    const gc = (options.rssEveryMs ?? 0) > 0 ? ['--expose-gc'] : [];
    const proc = fork(CHILD, [], { execArgv: ['--import', 'tsx', ...gc, ...profile, ...allocations, ...settings.childNodeFlags], env, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    const child = new WorkerProcess(proc);
    live.add(child);
    await child.#waitReport('forked', 60_000);
    child.#proc.send({ cmd: 'load', settings, system: options.target.system } satisfies { cmd: 'load' } & LoadCommand);
    await child.#waitReport('loaded', 60_000);
    const command: StartCommand = {
      settings,
      target: options.target,
      concurrency: start.concurrency,
      expected: options.expected,
      recordLatency: options.recordLatency ?? false,
      trackExecutions: options.trackExecutions ?? true,
      progressMs: 10,
      rssEveryMs: options.rssEveryMs ?? 0,
    };
    return { child, start: () => child.#start(command) };
  }

  async #start(command: StartCommand): Promise<{ startedAt: number; readyAt: number }> {
    this.#proc.send({ cmd: 'start', ...command });
    const report = await this.#waitReport('started', 60_000);
    return report as { startedAt: number; readyAt: number };
  }

  /** Stops the worker gracefully and returns what the child recorded. */
  async stop(): Promise<Stopped> {
    this.#proc.send({ cmd: 'stop' });
    const report = (await this.#waitReport('stopped', 120_000)) as Stopped;
    await waitFor('the worker child to exit', () => this.#exited, 10_000).catch(() => this.kill());
    return report;
  }

  /** Kills the child (by its pid) if it is still running. */
  kill(): void {
    if (!this.#exited) this.#proc.kill('SIGKILL');
  }

  async #waitReport(type: ChildReport['type'], timeoutMs: number): Promise<ChildReport> {
    let found: ChildReport | undefined;
    await waitFor(`"${type}" from a worker child`, () => {
      const error = this.#reports.find((r) => r.type === 'error');
      if (error) throw new Error(`Worker child failed: ${(error as { message: string }).message}`);
      if (this.#exited && !this.#reports.some((r) => r.type === type)) throw new Error(`Worker child exited before "${type}"; stderr: ${this.#stderr}`);
      found = this.#reports.find((r) => r.type === type);
      return found !== undefined;
    }, timeoutMs, 2);
    return found!;
  }
}

/** A forked child whose worker has not started yet. */
export interface PendingStart {
  child: WorkerProcess;
  start(): Promise<{ startedAt: number; readyAt: number }>;
}

/** Kills every child still running (after a failed measurement). */
export function killAllWorkers(): void {
  for (const child of live) child.kill();
}

