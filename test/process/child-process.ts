/**
 * Child processes for the process-level reliability tests: spawn a TypeScript child (`node --import tsx`),
 * read its stdout as one JSON object per line, wait for messages with a deadline, and kill what is left.
 *
 * Every child spawned here is tracked; call {@link killAllChildren} in `afterEach` so no test leaves a process
 * behind (a stopped child is continued first so SIGKILL is delivered at once).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root, where `tsx` and `node_modules` are found. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** One line a child printed on stdout: a JSON object with a `type`, or `{ type: 'raw', line }` otherwise. */
export interface ChildMessage {
  type: string;
  [key: string]: any;
}

/** How a child ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running (or finished) child process and everything it has said so far. */
export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far, in order. */
  readonly messages: ChildMessage[] = [];
  /** Everything printed on stderr (tail kept for error messages). */
  stderr = '';
  /** Set once the process has exited and its stdio is closed. */
  exitInfo: ExitInfo | null = null;
  /** Resolves when the process has exited and its stdout/stderr are fully read. */
  readonly closed: Promise<ExitInfo>;
  readonly #listeners = new Set<() => void>();

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    if (proc.pid === undefined) throw new Error(`Expected child "${name}" to start, got no pid`);
    this.pid = proc.pid;
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      let message: ChildMessage;
      try {
        const parsed: unknown = JSON.parse(line);
        message = typeof parsed === 'object' && parsed !== null && typeof (parsed as ChildMessage).type === 'string' ? (parsed as ChildMessage) : { type: 'raw', line };
      } catch {
        message = { type: 'raw', line };
      }
      this.messages.push(message);
      this.#notify();
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.closed = new Promise<ExitInfo>((resolve) => {
      proc.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
        this.#notify();
      });
    });
  }

  /** Whether the process is still running (or stopped). */
  get alive(): boolean {
    return this.exitInfo === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Messages of one type, in order. */
  ofType(type: string): ChildMessage[] {
    return this.messages.filter((m) => m.type === type);
  }

  /** Sends a signal; returns false when the process is already gone. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.alive) return false;
    try {
      return process.kill(this.pid, signal);
    } catch {
      return false;
    }
  }

  /** A short description for assertion messages: last lines of stdout and stderr, and the exit. */
  describe(): string {
    const tail = this.messages.slice(-15).map((m) => JSON.stringify(m)).join('\n  ');
    return `child "${this.name}" (pid ${this.pid}, exit ${JSON.stringify(this.exitInfo)})\n stdout tail:\n  ${tail}\n stderr tail:\n${this.stderr.slice(-3000)}`;
  }

  /** @internal Called on every new line and on close. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }
}

const live = new Set<Child>();

/**
 * Starts `test/process/children/<script>` as `node --import tsx <script> <JSON config>` in the repository root,
 * with stdin ignored and stdout/stderr piped.
 */
export function spawnChild(name: string, script: string, config: unknown, env: NodeJS.ProcessEnv = {}): Child {
  const path = fileURLToPath(new URL(`./children/${script}`, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', path, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WARDEN_LOG_LEVEL: 'silent', ...env },
  });
  const child = new Child(name, proc);
  live.add(child);
  void child.closed.then(() => live.delete(child));
  return child;
}

/**
 * Resolves with the first message (from index `from` on) that satisfies `predicate`. Rejects when
 * `timeoutMs` passes, or when the child exits without having printed one.
 */
export function waitForMessage(child: Child, predicate: (m: ChildMessage) => boolean, timeoutMs: number, from = 0): Promise<ChildMessage> {
  return new Promise<ChildMessage>((resolve, reject) => {
    let index = from;
    let unsubscribe: () => void = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`Expected a matching message from ${child.name} within ${timeoutMs} ms, got none: ${predicate.toString()}\n${child.describe()}`));
    }, timeoutMs);
    const check = (): void => {
      for (; index < child.messages.length; index++) {
        const m = child.messages[index]!;
        if (predicate(m)) {
          clearTimeout(timer);
          unsubscribe();
          resolve(m);
          return;
        }
      }
      if (child.exitInfo !== null) {
        clearTimeout(timer);
        unsubscribe();
        reject(new Error(`Expected a matching message from ${child.name}, got its exit first: ${predicate.toString()}\n${child.describe()}`));
      }
    };
    unsubscribe = child.subscribe(check);
    check();
  });
}

/** Resolves with the child's exit once it has exited; rejects after `timeoutMs`. */
export async function waitForExit(child: Child, timeoutMs: number): Promise<ExitInfo> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Expected ${child.name} to exit within ${timeoutMs} ms, it is still running\n${child.describe()}`)), timeoutMs);
  });
  try {
    return await Promise.race([child.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The scheduler state of a process from `/proc/<pid>/stat` (`R`, `S`, `T` = stopped, `Z`, …); null when gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (2nd field) is in parentheses and may contain spaces; the state follows it.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Sends SIGSTOP and resolves once the kernel reports the process stopped (signal delivery is asynchronous). */
export async function stopChild(child: Child, timeoutMs = 5_000): Promise<void> {
  child.signal('SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  while (processState(child.pid) !== 'T') {
    if (Date.now() >= deadline) throw new Error(`Expected ${child.name} to be stopped within ${timeoutMs} ms, its state is ${processState(child.pid)}\n${child.describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** SIGKILLs a child (continuing it first if it was stopped) and waits until it is gone. */
export async function killChild(child: Child, timeoutMs = 10_000): Promise<ExitInfo> {
  if (child.alive) {
    child.signal('SIGKILL');
    child.signal('SIGCONT');
  }
  return waitForExit(child, timeoutMs);
}

/** Kills every child still running. For `afterEach`. */
export async function killAllChildren(): Promise<void> {
  await Promise.allSettled([...live].map((c) => killChild(c)));
}

// A crashed test worker must not leave children behind either.
process.once('exit', () => {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/**
 * Polls `read` every `intervalMs` until `done(value)` holds, and returns that value. Rejects with the last
 * value seen when `timeoutMs` passes. The bounded polling of a real database, never a blind sleep.
 */
export async function pollUntil<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs: number; intervalMs?: number; children?: Child[] },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 75;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() >= deadline) {
      const notes = (options.children ?? []).map((c) => c.describe()).join('\n');
      throw new Error(`Expected ${what} within ${options.timeoutMs} ms, last saw ${JSON.stringify(value)}\n${notes}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Whether a forwarded error is a PostgreSQL connection terminated from outside (code 57P01 / socket closed). */
function isExternalTermination(error: unknown): boolean {
  const text = JSON.stringify(error ?? null);
  return text.includes('"code":"57P01"') || text.includes('Connection terminated unexpectedly');
}

/**
 * The `error` events a child forwarded, except PostgreSQL connections terminated from outside: the test
 * server is shared, and other suites' `pg_terminate_backend` calls are not failures of the code under test.
 */
export function errorEvents(child: Child): ChildMessage[] {
  return child.messages.filter((m) => m.type === 'event' && m.event === 'error' && !isExternalTermination(m.error));
}
