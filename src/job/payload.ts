import type { StandardSchemaV1 } from '@standard-schema/spec';
import { NonJsonValueError, PayloadTooLargeError, PayloadValidationError, type SchemaIssue } from '../errors.js';

/** Nesting deeper than this is refused: it is never a real payload, and it would overflow stacks downstream. */
export const MAX_JSON_DEPTH = 200;

/**
 * Checks that `value` is plain JSON that survives a round trip unchanged, and returns its JSON text.
 * Refuses what `JSON.stringify` would silently drop or change: `undefined`, functions, symbols, BigInt,
 * non-finite numbers, cycles, Dates, Maps, Sets and other class instances.
 * @param what the value's role in messages, e.g. `payload of job "send-email"`.
 * @throws NonJsonValueError with the path of the first offending value.
 * @throws PayloadTooLargeError when the UTF-8 JSON exceeds `limitBytes`.
 */
export function encodeJson(what: string, value: unknown, limitBytes: number): string {
  assertPlainJson(what, value);
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limitBytes) throw new PayloadTooLargeError(what, bytes, limitBytes);
  return text;
}

function assertPlainJson(what: string, root: unknown): void {
  const ancestors = new Set<object>();
  const visit = (value: unknown, path: string, depth: number): void => {
    if (depth > MAX_JSON_DEPTH) throw new NonJsonValueError(what, path, `nesting deeper than ${MAX_JSON_DEPTH} levels`);
    switch (typeof value) {
      case 'string':
        // PostgreSQL's jsonb cannot store U+0000; refuse it on every driver so payloads stay portable.
        if (value.includes('\u0000')) throw new NonJsonValueError(what, path, 'a string containing U+0000 (NUL)');
        if (!value.isWellFormed()) throw new NonJsonValueError(what, path, 'a string with a lone UTF-16 surrogate');
        return;
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(value)) throw new NonJsonValueError(what, path, String(value));
        return;
      case 'bigint':
        throw new NonJsonValueError(what, path, 'a BigInt (encode it as a string)');
      case 'undefined':
        throw new NonJsonValueError(what, path, 'undefined (omit the key or use null)');
      case 'function':
      case 'symbol':
        throw new NonJsonValueError(what, path, `a ${typeof value}`);
    }
    if (value === null) return;
    const obj = value as object;
    if (ancestors.has(obj)) throw new NonJsonValueError(what, path, 'a cyclic reference');
    ancestors.add(obj);
    if (Array.isArray(obj)) {
      obj.forEach((item, i) => visit(item, `${path}[${i}]`, depth + 1));
    } else {
      const proto = Object.getPrototypeOf(obj);
      if (proto !== Object.prototype && proto !== null) {
        throw new NonJsonValueError(what, path, `an instance of ${obj.constructor?.name ?? 'a class'} (convert it to plain JSON first)`);
      }
      for (const [key, item] of Object.entries(obj)) {
        if (key.includes('\u0000') || !key.isWellFormed()) throw new NonJsonValueError(what, path, 'a key containing U+0000 (NUL) or a lone UTF-16 surrogate');
        visit(item, `${path}.${key}`, depth + 1);
      }
    }
    ancestors.delete(obj);
  };
  visit(root, '$', 0);
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
