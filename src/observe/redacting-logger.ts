/**
 * A pino logger that redacts what it is given before pino sees it: the `ctx.log` of a job with `sensitive` fields.
 * pino's own `redact` option only knows fixed paths (no "this key at any depth") and never looks at the message
 * text, so the arguments of every log call go through the job's {@link Redactor} instead.
 * @module
 */
import type { Logger } from 'pino';
import { REDACTED, type Redactor } from './redact.js';

const LEVEL_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/**
 * Wraps `logger` so every log call's merging object (keys and secret values), message and interpolation
 * arguments are redacted, and so are child loggers' bindings. A level that is off costs no redaction. An `Error`
 * passed as the first argument is logged as pino logs one (`err` plus its message as `msg`), redacted.
 */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  return new Proxy(logger, {
    get(target, property, receiver) {
      if (typeof property === 'string' && LEVEL_METHODS.has(property)) {
        const method = Reflect.get(target, property, receiver) as (...args: unknown[]) => void;
        return (...args: unknown[]) => {
          if (!target.isLevelEnabled(property)) return;
          method.apply(target, redactArguments(args, redactor));
        };
      }
      if (property === 'child') {
        return (bindings: Record<string, unknown>, options?: object) =>
          redactingLogger(target.child(redactor.value(bindings) as Record<string, unknown>, options), redactor);
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function redactArguments(args: unknown[], redactor: Redactor): unknown[] {
  if (args.length === 0) return args;
  const [first, ...rest] = args;
  const tail = rest.map((arg) => redactArgument(arg, redactor));
  if (first instanceof Error) {
    const err = redactedError(first, redactor);
    // pino takes the message from the error when no message is given; keep that, redacted.
    return tail.length > 0 ? [{ err }, ...tail] : [{ err }, err.message];
  }
  return [redactArgument(first, redactor), ...tail];
}

/**
 * A copy of `error` with its message, stack and own properties redacted, of the same class, so pino's error
 * serializer shows it as it would the original (`type` is the class name).
 */
function redactedError(error: Error, redactor: Redactor): Error {
  const copy = redactor.value(error) as Record<string, unknown>;
  const out = Object.create(Object.getPrototypeOf(error) as object) as Error;
  for (const [key, value] of Object.entries(copy)) {
    if (key !== 'type') Object.defineProperty(out, key, { value, enumerable: key !== 'message' && key !== 'stack', writable: true, configurable: true });
  }
  return out;
}

function redactArgument(arg: unknown, redactor: Redactor): unknown {
  if (arg instanceof Error) return redactedError(arg, redactor);
  if (typeof arg === 'string') return redactor.text(arg);
  if (typeof arg === 'number' || typeof arg === 'bigint' || typeof arg === 'boolean') {
    // A secret passed as a number for `%d`: shown as NaN rather than in full.
    return redactor.text(String(arg)) === String(arg) ? arg : REDACTED;
  }
  if (typeof arg === 'object' && arg !== null) {
    const copy = redactor.value(arg);
    // Errors directly under a key (`{ err }`) stay errors, so pino serializes them as such.
    if (copy !== null && typeof copy === 'object' && !Array.isArray(arg)) {
      for (const [key, value] of Object.entries(arg)) {
        const out = copy as Record<string, unknown>;
        if (value instanceof Error && out[key] !== REDACTED) out[key] = redactedError(value, redactor);
      }
    }
    return copy;
  }
  return arg;
}
