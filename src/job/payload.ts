import type { StandardSchemaV1 } from '@standard-schema/spec';
import { NonJsonValueError, PayloadTooLargeError, PayloadValidationError, type SchemaIssue } from '../errors.js';

/** Nesting deeper than this is refused: it is never a real payload, and it would overflow stacks downstream. */
export const MAX_JSON_DEPTH = 200;

/**
 * Checks that `value` is plain JSON that survives a round trip unchanged, and returns its JSON text.
 * Refuses what `JSON.stringify` would silently drop or change: `undefined`, functions, symbols, BigInt,
 * non-finite numbers, cycles, Dates, Maps, Sets and other class instances, holes in sparse arrays (written as
 * `null`), named properties of arrays and symbol-keyed properties (both left out). `-0` is accepted and written as
 * `0`: JSON has no negative zero, the two compare equal, and refusing it would fail enqueues (and step results) of
 * computed values such as `-x` for `x = 0`.
 * @param what the value's role in messages, e.g. `payload of job "send-email"`.
 * @throws NonJsonValueError with the path of the first offending value.
 * @throws PayloadTooLargeError when the UTF-8 JSON exceeds `limitBytes`, or is longer than the longest string the
 *   runtime holds (`bytes` null: far over any limit, but never measured).
 */
export function encodeJson(what: string, value: unknown, limitBytes: number): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    // JSON too long for one string (a large string referenced many times): too large, refused without a walk like
    // any payload over the limit, not the runtime's RangeError.
    if (isStringLengthError(error)) throw new PayloadTooLargeError(what, null, limitBytes, { cause: error });
    // A cycle or a BigInt: the walk names it and its path.
    assertPlainJson(what, value);
    throw error;
  }
  // The size first: an oversized payload is refused without walking it (the walk of a huge array costs more than
  // its text), and a payload within the limit bounds the walk.
  if (text !== undefined) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limitBytes) throw new PayloadTooLargeError(what, bytes, limitBytes);
  }
  assertPlainJson(what, value);
  return text!;
}

/**
 * Whether `error` is V8's refusal to build a string longer than its maximum, which `JSON.stringify` throws for text
 * that would be longer. Told by its message, the one V8 gives every such refusal: a stack overflow is a RangeError
 * too, and is no size.
 */
function isStringLengthError(error: unknown): boolean {
  return error instanceof RangeError && error.message === 'Invalid string length';
}

/**
 * Where {@link encodeJson}'s walk is: the keys and indexes down to the current value (turned into text only for an
 * error) and the objects enclosing it (a cycle is an object among its own ancestors, searched linearly: at most
 * {@link MAX_JSON_DEPTH} of them). Stacks, not a path string per value and a `Set` per call: those were most of the
 * walk's cost on the small payloads of a typical enqueue.
 */
interface JsonWalk {
  what: string;
  path: (string | number | symbol)[];
  ancestors: object[];
}

function assertPlainJson(what: string, root: unknown): void {
  checkValue({ what, path: [], ancestors: [] }, root);
}

function checkValue(walk: JsonWalk, value: unknown): void {
  if (walk.path.length > MAX_JSON_DEPTH) fail(walk, `nesting deeper than ${MAX_JSON_DEPTH} levels`);
  switch (typeof value) {
    case 'string':
      // PostgreSQL's jsonb cannot store U+0000; refuse it on every driver so payloads stay portable.
      if (value.includes('\u0000')) fail(walk, 'a string containing U+0000 (NUL)');
      if (!value.isWellFormed()) fail(walk, 'a string with a lone UTF-16 surrogate');
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) fail(walk, String(value));
      return;
    case 'bigint':
      fail(walk, 'a BigInt (encode it as a string)');
    case 'undefined':
      fail(walk, 'undefined (omit the key or use null)');
    case 'function':
    case 'symbol':
      fail(walk, `a ${typeof value}`);
  }
  if (value !== null) checkObject(walk, value as object);
}

function checkObject(walk: JsonWalk, obj: object): void {
  const { path, ancestors } = walk;
  if (ancestors.includes(obj)) fail(walk, 'a cyclic reference');
  ancestors.push(obj);
  if (Array.isArray(obj)) {
    const length = obj.length;
    for (let i = 0; i < length; i++) {
      path.push(i);
      // A hole (`[1, , 3]`, `new Array(3)`) is written as null: the job would read back another array.
      if (!(i in obj)) fail(walk, 'a hole in a sparse array (JSON writes it as null; use null)');
      checkValue(walk, obj[i]);
      path.pop();
    }
    // Without holes, every own key beyond the elements is a named property, which JSON leaves out.
    // (An element made non-enumerable is one key short, and JSON still writes it: only a key that is no index counts.)
    const keys = Object.keys(obj);
    if (keys.length !== length) {
      const named = keys.find((key) => !isArrayIndex(key));
      if (named !== undefined) {
        path.push(named);
        fail(walk, 'a named property of an array (JSON keeps only the elements; use an object)');
      }
    }
  } else {
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      fail(walk, `an instance of ${obj.constructor?.name ?? 'a class'} (convert it to plain JSON first)`);
    }
    // Keys, then each value: no [key, value] pair is allocated per property.
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key.includes('\u0000') || !key.isWellFormed()) fail(walk, 'a key containing U+0000 (NUL) or a lone UTF-16 surrogate');
      path.push(key);
      checkValue(walk, (obj as Record<string, unknown>)[key]);
      path.pop();
    }
  }
  assertNoSymbolKeys(walk, obj);
  ancestors.pop();
}

/**
 * Refuses an enumerable symbol-keyed property, which `JSON.stringify` leaves out. Non-enumerable ones are metadata
 * that no copy (spread, `Object.assign`) carries either, and are left alone like non-enumerable string keys.
 */
function assertNoSymbolKeys(walk: JsonWalk, obj: object): void {
  const symbols = Object.getOwnPropertySymbols(obj);
  if (symbols.length === 0) return;
  for (const symbol of symbols) {
    if (Object.prototype.propertyIsEnumerable.call(obj, symbol)) {
      walk.path.push(symbol);
      fail(walk, 'a symbol-keyed property (JSON leaves it out; use a string key)');
    }
  }
}

/** Throws the walk's error for the value at its current path, e.g. `$.items[2].sku` or `$.meta[Symbol(id)]`. */
function fail(walk: JsonWalk, got: string): never {
  let text = '$';
  for (const segment of walk.path) {
    text += typeof segment === 'string' ? `.${segment}` : `[${String(segment)}]`;
  }
  throw new NonJsonValueError(walk.what, text, got);
}

/** Whether `key` is an array index (`"0"`, `"17"`; not `"01"` or `"-1"`), as `Object.keys` lists elements. */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 2 ** 32 - 1;
}

/** The outcome of validating with a Standard Schema: the output value, or the issues. */
export type ValidationOutcome = { ok: true; value: unknown } | { ok: false; issues: SchemaIssue[] };

/** Runs a Standard Schema validator (zod, valibot, arktype, …), which may be async. */
export async function validateWithSchema(schema: StandardSchemaV1, value: unknown): Promise<ValidationOutcome> {
  const result = await schema['~standard'].validate(value);
  if (result.issues) {
    return {
      ok: false,
      issues: result.issues.map((issue) => ({
        message: issue.message,
        path: (issue.path ?? []).map((p) => (typeof p === 'object' && p !== null && 'key' in p ? p.key : p) as string | number),
      })),
    };
  }
  return { ok: true, value: result.value };
}

/**
 * Validates a payload against its job's schema, throwing the typed error callers expect at enqueue.
 * @throws PayloadValidationError listing every issue.
 */
export async function assertValidPayload(jobName: string, schema: StandardSchemaV1 | undefined, value: unknown): Promise<unknown> {
  if (!schema) return value;
  const outcome = await validateWithSchema(schema, value);
  if (!outcome.ok) throw new PayloadValidationError(jobName, outcome.issues);
  return outcome.value;
}
