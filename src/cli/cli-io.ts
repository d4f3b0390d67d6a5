/**
 * Where the CLI writes, and how it formats what it writes: compact aligned text for people, exactly one JSON
 * document for `--json`.
 * @module
 */
import type { Writable } from 'node:stream';

/**
 * The CLI's output streams. `out` is for the command's result (stdout), `err` for errors and progress
 * (stderr). Each call writes `text` verbatim; callers add the newlines.
 */
export interface CliIo {
  /**
   * Writes to the command's output.
   * @returns `false` when the output holds more than it wants buffered (its reader is slower): a command that writes
   *   much (`audit export`) awaits {@link CliIo.drain} before writing more. `true`, or nothing (an io that never
   *   fills), to go on.
   * @throws CliOutputError once the output failed (its reader closed the pipe, as `| head` does): the command stops.
   */
  out(text: string): boolean | void;
  /** Writes to the error output. Never throws: a failing error output has nowhere to be reported. */
  err(text: string): void;
  /**
   * Resolves once the output can take more after `out` returned `false`. @default resolves at once
   * @throws CliOutputError (a rejection) when the output fails meanwhile.
   */
  drain?(): Promise<void>;
}

/**
 * The command's output failed: its reader closed the pipe (`code` `EPIPE`, e.g. `warden audit export | head`), or the
 * write itself failed. Thrown by {@link CliIo.out} so the command stops writing; `runCli` exits 0 for `EPIPE`, as
 * Unix tools whose reader went away do, and reports anything else in one line with exit 1.
 */
export class CliOutputError extends Error {
  /** The failed write's error code (`EPIPE`, `EIO`, `ENOSPC`, …), or null when it had none. */
  readonly code: string | null;

  constructor(cause: unknown) {
    const code = typeof (cause as { code?: unknown } | null)?.code === 'string' ? (cause as { code: string }).code : null;
    const what = code ?? (cause instanceof Error ? cause.message : String(cause));
    super(`Expected to write the output, got ${what}`, { cause });
    this.name = 'CliOutputError';
    this.code = code;
  }

  /** True when the reader went away: nothing the user has to act on. */
  get readerClosed(): boolean {
    return this.code === 'EPIPE';
  }
}

/**
 * A {@link CliIo} over two writable streams. Both get an `error` listener: without one, Node turns a failed write
 * (the `EPIPE` of a closed pipe) into an uncaught exception with a stack trace. After its first failure `out` throws
 * that {@link CliOutputError}, and a pending `drain()` rejects with it; a failing `err` is ignored.
 */
export function streamIo(stdout: Writable, stderr: Writable): CliIo {
  let failure: CliOutputError | null = null;
  const waiting = new Set<{ resolve: () => void; reject: (error: CliOutputError) => void }>();
  const fail = (error: unknown): CliOutputError => {
    failure ??= new CliOutputError(error);
    for (const waiter of waiting) waiter.reject(failure);
    waiting.clear();
    return failure;
  };
  stdout.on('error', (error) => void fail(error));
  // Closed without an error (destroyed): nothing written from now on would arrive.
  stdout.on('close', () => void fail(Object.assign(new Error('the output was closed'), { code: 'EPIPE' })));
  stdout.on('drain', () => {
    for (const waiter of waiting) waiter.resolve();
    waiting.clear();
  });
  stderr.on('error', () => {});
  return {
    out(text) {
      if (failure) throw failure;
      try {
        return stdout.write(text);
      } catch (error) {
        // A file or terminal is written synchronously: its failure is thrown here rather than emitted.
        throw fail(error);
      }
    },
    err(text) {
      try {
        stderr.write(text);
      } catch {
        // Nowhere left to report it.
      }
    },
    drain() {
      if (failure) return Promise.reject(failure);
      if (!stdout.writableNeedDrain) return Promise.resolve();
      return new Promise((resolve, reject) => void waiting.add({ resolve, reject }));
    },
  };
}

let processStreams: CliIo | undefined;

/**
 * The {@link streamIo} of the process's stdout and stderr, made on first call, so that importing the CLI (in tests,
 * in-process) does not put listeners on the process's streams.
 */
export function processIo(): CliIo {
  processStreams ??= streamIo(process.stdout, process.stderr);
  return processStreams;
}

/** Writes each line followed by a newline to `io.out`. */
export function writeLines(io: CliIo, lines: readonly string[]): void {
  if (lines.length > 0) io.out(`${lines.join('\n')}\n`);
}

/**
 * Writes one JSON document to `io.out`. Dates become ISO strings (their `toJSON`), bigints decimal strings.
 */
export function writeJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

/**
 * Lays out rows under headers in columns separated by two spaces, each as wide as its widest cell. Trailing
 * spaces are trimmed. Returns the lines (header first).
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)];
}

/**
 * Lays out `label: value` pairs with the values aligned. Returns the lines.
 */
export function formatFields(fields: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(0, ...fields.map(([label]) => label.length + 1));
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${value}`.trimEnd());
}

/** A timestamp as `2024-05-01 12:00:03Z` (UTC, seconds), or `-` for none. */
export function formatDate(date: Date | null | undefined): string {
  if (!date) return '-';
  if (Number.isNaN(date.getTime())) return 'invalid date';
  return date.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** A length of time for people: `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** Collapses whitespace (newlines included) to single spaces and cuts to `max` characters with `…`. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, Math.max(0, max - 1))}…` : flat;
}
