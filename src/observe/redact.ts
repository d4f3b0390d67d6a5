/**
 * Redaction of fields a job definition marks `sensitive`: one function every output path (logs, spans, CLI,
 * audit trail) goes through, so what counts as sensitive is decided in one place.
 *
 * Matching is by key, never by value shape: a plain name (`"password"`) matches that key at any depth; a dotted
 * path (`"card.number"`) matches a `number` key whose parent key is `card`, at any depth (a suffix of the key
 * path), so the same rule covers a payload, a log object wrapping it (`{ payload: { card } }`) and an error's
 * properties. Array indices are transparent: `"cards.number"` matches `cards[3].number`.
 *
 * Key matching cannot see a secret copied into a free-text string (`throw new Error(\`card ${n} declined\`)`):
 * {@link collectSensitiveValues} and {@link redactText} replace such copies in error messages and stacks.
 * @module
 */

import type { ErrorInfo } from '../job/job-record.js';

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/** Depth past which nested values are replaced, so a pathological object cannot blow the stack. */
const MAX_DEPTH = 64;

/** Shortest secret {@link redactText} replaces: shorter ones ("1", "yes") would garble every message. */
export const MIN_SCRUB_LENGTH = 4;

interface Matcher {
  /** Plain names: match at any depth. */
  names: Set<string>;
  /** Dotted paths split into segments: match as a suffix of the key path. */
  paths: string[][];
}

const matcherCache = new WeakMap<readonly string[], Matcher>();

function matcherFor(sensitive: readonly string[]): Matcher {
  const cached = matcherCache.get(sensitive);
  if (cached) return cached;
  const matcher: Matcher = { names: new Set(), paths: [] };
  for (const field of sensitive) {
    if (typeof field !== 'string' || field === '') continue;
    if (field.includes('.')) matcher.paths.push(field.split('.').filter((s) => s !== ''));
    else matcher.names.add(field);
  }
  matcherCache.set(sensitive, matcher);
  return matcher;
}

function isSensitiveKey(matcher: Matcher, keyPath: readonly string[], key: string): boolean {
  if (matcher.names.has(key)) return true;
  for (const path of matcher.paths) {
    if (path[path.length - 1] !== key || path.length - 1 > keyPath.length) continue;
    let matches = true;
    for (let i = 0; i < path.length - 1; i++) {
      if (keyPath[keyPath.length - (path.length - 1) + i] !== path[i]) {
        matches = false;
        break;
      }
    }
    if (matches) return true;
  }
  return false;
}

/** Options of {@link redact}. */
export interface RedactOptions {
  /**
   * Secret values to cut out of every string in the copy (see {@link collectSensitiveValues}), for copies made
   * in free text such as error messages. @default none
   */
  secrets?: readonly string[];
}

/**
 * A deep copy of `value` with the values of sensitive keys replaced by `"[redacted]"`. Errors become plain
 * objects (`type`, `message`, `stack` and their own properties, redacted); Maps, Sets, Dates and class
 * instances are copied as their enumerable own properties (Dates as ISO strings); cycles become `"[circular]"`.
 * Returns `value` itself when `sensitive` is empty (and no secrets are given), so the common case costs nothing.
 * Never throws: a getter that throws becomes `"[unreadable]"`.
 * @param sensitive field names and dotted paths, as in `defineJob({ sensitive })`.
 */
export function redact(value: unknown, sensitive: readonly string[], options: RedactOptions = {}): unknown {
  const secrets = options.secrets ?? [];
  if ((!Array.isArray(sensitive) || sensitive.length === 0) && secrets.length === 0) return value;
  try {
    return copy(value, { matcher: matcherFor(Array.isArray(sensitive) ? sensitive : []), secrets, seen: new WeakSet() }, [], 0);
  } catch {
    // Defensive: copy() guards each read, but a redactor that throws would hide the original error.
    return REDACTED;
  }
}

interface CopyContext {
  matcher: Matcher;
  secrets: readonly string[];
  seen: WeakSet<object>;
}

function copy(value: unknown, ctx: CopyContext, keyPath: string[], depth: number): unknown {
  if (typeof value === 'string') return redactText(value, ctx.secrets);
  if (value === null || typeof value !== 'object') return value;
  const { seen } = ctx;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => copy(item, ctx, keyPath, depth + 1));
    if (value instanceof Map) return copyEntries([...value.entries()].map(([k, v]) => [String(k), v]), ctx, keyPath, depth);
    if (value instanceof Set) return [...value].map((item) => copy(item, ctx, keyPath, depth + 1));
    const entries: [string, unknown][] = [];
    if (value instanceof Error) {
      entries.push(['type', value.name], ['message', value.message], ['stack', value.stack]);
      if ('cause' in value && value.cause !== undefined) entries.push(['cause', value.cause]);
    }
    for (const key of Object.keys(value)) entries.push([key, readProperty(value, key)]);
    return copyEntries(entries, ctx, keyPath, depth);
  } finally {
    // Only ancestors count as cycles: the same object twice side by side is copied twice.
    seen.delete(value);
  }
}

function copyEntries(entries: [string, unknown][], ctx: CopyContext, keyPath: string[], depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) {
    if (isSensitiveKey(ctx.matcher, keyPath, key)) {
      out[key] = item === undefined ? undefined : REDACTED;
      continue;
    }
    keyPath.push(key);
    out[key] = copy(item, ctx, keyPath, depth + 1);
    keyPath.pop();
  }
  return out;
}

function readProperty(value: object, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return '[unreadable]';
  }
}

/**
 * The values found under sensitive keys in `value` (strings, and numbers and booleans as text), at least
 * {@link MIN_SCRUB_LENGTH} characters long, longest first, so {@link redactText} can remove copies of them
 * from free text such as an error message. Objects under a sensitive key contribute their leaf values.
 * Never throws.
 */
export function collectSensitiveValues(value: unknown, sensitive: readonly string[]): string[] {
  if (!Array.isArray(sensitive) || sensitive.length === 0) return [];
  const found = new Set<string>();
  try {
    walk(value, matcherFor(sensitive), [], new WeakSet(), 0, false, found);
  } catch {
    // Best effort: key redaction still applies.
  }
  return [...found].sort((a, b) => b.length - a.length);
}

function walk(value: unknown, matcher: Matcher, keyPath: string[], seen: WeakSet<object>, depth: number, inside: boolean, found: Set<string>): void {
  if (value === null || value === undefined) return;
  if (typeof value !== 'object') {
    if (!inside) return;
    const text = String(value);
    if (text.length >= MIN_SCRUB_LENGTH) found.add(text);
    return;
  }
  if (seen.has(value) || depth >= MAX_DEPTH) return;
  seen.add(value);
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((item) => ['', item]) : Object.keys(value).map((key) => [key, readProperty(value, key)]);
  for (const [key, item] of entries) {
    if (Array.isArray(value)) {
      walk(item, matcher, keyPath, seen, depth + 1, inside, found);
      continue;
    }
    const sensitiveHere = inside || isSensitiveKey(matcher, keyPath, key);
    keyPath.push(key);
    walk(item, matcher, keyPath, seen, depth + 1, sensitiveHere, found);
    keyPath.pop();
  }
}

/**
 * `text` with every occurrence of each secret replaced by `"[redacted]"` (secrets longest first, as
 * {@link collectSensitiveValues} returns them, so a secret containing another is removed whole). Never throws.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  if (secrets.length === 0 || typeof text !== 'string') return text;
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_SCRUB_LENGTH && out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/**
 * Redaction bound to one job: its definition's `sensitive` fields and the secret values its payload holds under
 * them (collected on first use). Every output path of a job (its `ctx.log`, its stored errors, spans, CLI)
 * goes through one of these.
 */
export interface Redactor {
  /** The sensitive fields. */
  readonly sensitive: readonly string[];
  /** A redacted deep copy (keys and secret values); see {@link redact}. */
  value(value: unknown): unknown;
  /** `text` without the job's secret values. */
  text(text: string): string;
  /**
   * An {@link ErrorInfo} with the job's secret values cut out of its message, stack and issues: for errors read
   * back as stored. An error being recorded is redacted before it is cut to its length limits instead (the
   * attempt passes {@link Redactor.text} to the conversion), since a secret straddling the cut no longer matches.
   */
  errorInfo(info: ErrorInfo): ErrorInfo;
}

/**
 * A {@link Redactor} for a job with these `sensitive` fields whose payload is `source` (the values found under
 * sensitive keys there are the secrets cut out of free text). Returns null when `sensitive` is empty: nothing to
 * do, and callers skip the work entirely.
 */
export function createRedactor(sensitive: readonly string[] | undefined, source?: unknown): Redactor | null {
  if (!Array.isArray(sensitive) || sensitive.length === 0) return null;
  let secrets: string[] | null = null;
  const getSecrets = () => (secrets ??= collectSensitiveValues(source, sensitive));
  return {
    sensitive,
    value: (value) => redact(value, sensitive, { secrets: getSecrets() }),
    text: (text) => redactText(text, getSecrets()),
    errorInfo: (info) => redactErrorInfo(info, getSecrets()),
  };
}

/**
 * `info` with `secrets` cut out of its message, stack and issue messages. Never throws. Meant for stored errors:
 * text that was already cut to length may end in the first characters of a secret, which no longer match.
 */
export function redactErrorInfo(info: ErrorInfo, secrets: readonly string[]): ErrorInfo {
  if (secrets.length === 0 || info === null || typeof info !== 'object') return info;
  const out: ErrorInfo = { ...info, name: redactText(info.name, secrets), message: redactText(info.message, secrets) };
  if (typeof info.stack === 'string') out.stack = redactText(info.stack, secrets);
  if (Array.isArray(info.issues)) out.issues = info.issues.map((i) => ({ ...i, message: redactText(i.message, secrets) }));
  return out;
}
