/**
 * Where the CLI writes, and how it formats what it writes: compact aligned text for people, exactly one JSON
 * document for `--json`.
 * @module
 */

/**
 * The CLI's output streams. `out` is for the command's result (stdout), `err` for errors and progress
 * (stderr). Each call writes `text` verbatim; callers add the newlines.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** Writes to the process's stdout and stderr. */
export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

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
