/**
 * A pino logger that redacts what it is given before pino sees it: the `ctx.log` of a job with `sensitive` fields.
 * pino's own `redact` option only knows fixed paths (no "this key at any depth") and never looks at the message
 * text, so the arguments of every log call go through the job's {@link Redactor} instead.
 * @module
 */
import type { ChildLoggerOptions, Logger } from 'pino';
import { REDACTED, type Redactor } from './redact.js';

/**
 * Wraps `logger` so every log call's merging object (keys and secret values), message and interpolation
 * arguments are redacted, and so are child loggers' bindings and message prefix, and bindings added later with
 * `setBindings`. Every level of the logger is covered: the six built-in ones and the application's
 * `customLevels` (any name in `logger.levels.values`). A level that is off costs no redaction. An `Error` passed
 * as the first argument is logged as pino logs one (`err` plus its message as `msg`), redacted.
 */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  return new Proxy(logger, {
    get(target, property, receiver) {
      // Read from the logger itself rather than a fixed list: custom levels (`customLevels: { notice: 35 }`, on
      // the root or given to a child) are log methods too, and anything missed here would log unredacted.
      if (typeof property === 'string' && isLevel(target, property)) {
        const method = Reflect.get(target, property, receiver) as (...args: unknown[]) => void;
        return (...args: unknown[]) => {
          if (!target.isLevelEnabled(property)) return;
          method.apply(target, redactArguments(args, redactor));
        };
      }
      if (property === 'child') {
        return (bindings: Record<string, unknown>, options?: ChildLoggerOptions) =>
          redactingLogger(target.child(redactor.value(bindings) as Record<string, unknown>, childOptions(options, redactor)), redactor);
      }
      if (property === 'setBindings') {
        // Bindings set here appear on every later line of this logger (and its children made afterwards).
        return (bindings: Record<string, unknown>) => target.setBindings(redactor.value(bindings) as Record<string, unknown>);
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Whether `name` is one of `logger`'s levels (built-in or custom), i.e. a method that writes a line. */
function isLevel(logger: Logger, name: string): boolean {
  const values = (logger as { levels?: { values?: Record<string, number> } }).levels?.values;
  return values !== undefined && values !== null && Object.hasOwn(values, name) && typeof (logger as unknown as Record<string, unknown>)[name] === 'function';
}

/**
 * A child's options with its `msgPrefix` redacted: pino puts the prefix in front of every message the child
 * writes, past the redaction of each call's arguments. The other options (`level`, `serializers`, pino's own
 * `redact` paths, `customLevels`) add no text of their own; the logged values they act on are already redacted.
 */
function childOptions(options: ChildLoggerOptions | undefined, redactor: Redactor): ChildLoggerOptions | undefined {
  if (options === undefined || options === null || typeof options !== 'object' || typeof options.msgPrefix !== 'string') return options;
  return { ...options, msgPrefix: redactor.text(options.msgPrefix) };
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
