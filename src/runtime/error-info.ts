import type { ErrorInfo } from '../job/job-record.js';

/** Longest stack kept per attempt, so a pathological error cannot bloat the attempts table. */
const MAX_STACK = 8_000;
const MAX_MESSAGE = 2_000;
const MAX_NAME = 200;
/**
 * Most schema issues kept per error: a ZodError from validating a large array has one per element, and every
 * one of them would otherwise be stored in the attempt row and `last_error`, and go out in events and logs.
 */
const MAX_ISSUES = 100;
/**
 * Characters of issue messages and path segments kept per error in all. One issue never exceeds it
 * ({@link MAX_MESSAGE} plus {@link MAX_PATH} segments of {@link MAX_NAME}), so the first issue is always kept.
 */
const MAX_ISSUES_TEXT = 8_000;
/** Most path segments kept per issue; a longer path ends in a `"..."` segment. */
const MAX_PATH = 20;
/** What a property whose read threw (a getter, a Proxy trap) is stored as. */
const UNREADABLE = '[unreadable]';

/**
 * Turns anything thrown into a storable {@link ErrorInfo}; never throws itself. Every property is read guarded
 * and every non-string rendered safely: a handler can throw anything (an Error whose `name` is a number, whose
 * `message` getter throws, a circular null-prototype object), and a throw here would replace the handler's error
 * with Warden's own and lose the attempt's retry decision. Errors from another realm (node:vm, an iframe) are
 * recognised by their tag, since they are not `instanceof Error` here.
 *
 * `redact`, when given, is applied to every text (name, message, stack, issue messages) **before** it is cut to
 * its length limit: cut first, a secret straddling the limit would no longer match and its first characters would
 * be stored, and from there logged, announced, traced and audited. The whole text is redacted, however long;
 * the work is linear in what the handler threw. Schema issues are bounded in number and size (see
 * {@link MAX_ISSUES}); when some are left out, a last issue with an empty path says how many.
 * @param redact removes secret values from a text (a job's `Redactor.text`); must not throw.
 */
export function toErrorInfo(error: unknown, redact?: (text: string) => string): ErrorInfo {
  const text = (value: string, max: number) => truncate(redact ? redact(value) : value, max);
  try {
    if (isError(error)) {
      const name = read(error, 'name');
      const info: ErrorInfo = { name: text(name === undefined || name === null || name === '' ? 'Error' : render(name), MAX_NAME), message: text(render(read(error, 'message')), MAX_MESSAGE) };
      const stack = read(error, 'stack');
      if (stack !== undefined && stack !== null && stack !== '') info.stack = text(render(stack), MAX_STACK);
      const issues = read(error, 'issues');
      if (guarded(() => Array.isArray(issues), false)) info.issues = boundedIssues(issues as unknown[], text);
      return info;
    }
    return { name: 'NonError', message: text(`A non-Error value was thrown: ${render(error)}`, MAX_MESSAGE) };
  } catch {
    // Last resort, for what the guarded reads cannot foresee (a redactor that throws after all): a fixed text,
    // which holds no secret.
    return { name: 'Error', message: 'Warden could not describe the thrown value' };
  }
}

/**
 * Whether `value` is an Error: `instanceof Error`, or tagged `[object Error]` (an Error from another realm, whose
 * `Error` is another function). Never throws (a Proxy's traps can).
 */
export function isError(value: unknown): boolean {
  return guarded(() => value instanceof Error, false) || guarded(() => Object.prototype.toString.call(value) === '[object Error]', false);
}

/**
 * The first {@link MAX_ISSUES} issues, while their texts fit {@link MAX_ISSUES_TEXT}, in the stored shape; the
 * rest are counted in a last issue with an empty path, so readers of the `{ message, path }[]` shape still work.
 */
function boundedIssues(issues: unknown[], text: (value: string, max: number) => string): NonNullable<ErrorInfo['issues']> {
  const length = read(issues, 'length');
  const total = typeof length === 'number' ? length : 0;
  const kept: NonNullable<ErrorInfo['issues']> = [];
  let used = 0;
  for (let i = 0; i < total && kept.length < MAX_ISSUES; i++) {
    const issue = read(issues, i);
    const message = text(render(read(issue, 'message')), MAX_MESSAGE);
    const path = issuePath(read(issue, 'path'));
    const size = message.length + path.reduce<number>((sum, segment) => sum + String(segment).length, 0);
    if (used + size > MAX_ISSUES_TEXT) break;
    used += size;
    kept.push({ message, path });
  }
  if (kept.length < total) kept.push({ message: `${total - kept.length} more issue(s) not kept (stored errors keep at most ${MAX_ISSUES} issues, ${MAX_ISSUES_TEXT} characters in all)`, path: [] });
  return kept;
}

/** An issue's path: numbers kept, other segments rendered and cut, at most {@link MAX_PATH} of them. */
function issuePath(path: unknown): (string | number)[] {
  if (!guarded(() => Array.isArray(path), false)) return [];
  const length = read(path, 'length');
  const total = typeof length === 'number' ? length : 0;
  const out: (string | number)[] = [];
  for (let i = 0; i < Math.min(total, MAX_PATH); i++) {
    const segment = read(path, i);
    // Path segments are key names, not values: they are kept as they are (cut only), as the redactor does.
    out.push(typeof segment === 'number' ? segment : truncate(render(segment), MAX_NAME));
  }
  if (total > MAX_PATH) out.push('...');
  return out;
}

/** `target[key]`, or {@link UNREADABLE} when reading it throws; undefined on null and undefined. */
function read(target: unknown, key: PropertyKey): unknown {
  if (target === null || target === undefined) return undefined;
  return guarded(() => (target as Record<PropertyKey, unknown>)[key], UNREADABLE);
}

/**
 * `value` as text, whatever it is: a string as it is; an object as JSON (cycles marked `"[circular]"`) or else
 * through `String`; anything else through `String`; failing all of that (a null-prototype object that cannot be
 * serialized), its `[object …]` tag.
 */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const json = guarded(() => JSON.stringify(value, withoutCycles()), undefined);
    if (json !== undefined) return json;
  }
  return guarded(() => String(value), undefined) ?? guarded(() => Object.prototype.toString.call(value), '[unrenderable]');
}

/**
 * A JSON.stringify replacer that writes `"[circular]"` for an ancestor met again (a shared sibling is written
 * twice) and a BigInt as its digits: either would otherwise make the whole value unserializable.
 */
function withoutCycles(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function replace(this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value !== 'object' || value === null) return value;
    // `this` is the object holding `value`: what was pushed after it is finished with.
    while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
    if (ancestors.includes(value)) return '[circular]';
    ancestors.push(value);
    return value;
  };
}

/** `fn()`, or `fallback` when it throws. */
function guarded<T, F>(fn: () => T, fallback: F): T | F {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/**
 * Cuts a text to `max` characters and makes it storable everywhere: PostgreSQL's jsonb rejects U+0000 and lone
 * surrogates, and one unstorable error must never block the batch of endings it is written with. Redaction, if
 * any, must already have been applied (see {@link toErrorInfo}).
 */
function truncate(text: string, max: number): string {
  const cut = text.length > max ? `${text.slice(0, max - 3)}...` : text;
  return cut.replaceAll('\u0000', '\uFFFD').toWellFormed();
}
