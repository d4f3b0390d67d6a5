/**
 * How the CLI reports failures: one line `warden: <message>` on stderr for anything the user can fix (bad
 * input, unknown job, unreachable database, wrong state…), and a stack only for unexpected errors when
 * `WARDEN_DEBUG=1`.
 * @module
 */
import { WardenError } from '../errors.js';
import type { CliIo } from './cli-io.js';

/** Exit code of a command that failed for a reason reported in one line. */
export const EXIT_FAILURE = 1;
/** Exit code of a command-line usage error (unknown option, missing argument). */
export const EXIT_USAGE = 2;

/**
 * A failure the user can act on, found by the CLI itself (missing `--jobs`, bad JSON, module not found…).
 * Reported as one line; `exitCode` is what the command exits with.
 */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? EXIT_FAILURE;
  }
}

const BUILTIN_ERROR_NAMES = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError', 'InternalError']);

/**
 * True for Warden's own errors: an instance of {@link WardenError}, or (when the jobs module loaded another copy
 * of Warden) an error whose name ends in `Error`, is not a built-in one, and has a string `code`.
 */
export function isWardenError(error: unknown): error is Error & { code: string } {
  if (error instanceof WardenError) return true;
  if (!(error instanceof Error)) return false;
  const { name } = error;
  return typeof name === 'string' && name.endsWith('Error') && !BUILTIN_ERROR_NAMES.has(name) && typeof (error as { code?: unknown }).code === 'string';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);

interface ErrorFields {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  errors?: unknown;
  severity?: unknown;
  message?: unknown;
}

/**
 * Describes an error that means "the database cannot be reached or refused us" (network failure, DNS, refused
 * connection, authentication, missing database), or returns null for anything else.
 */
export function describeConnectionError(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as ErrorFields;
  // Node reports a refused connection to every address of a host as an AggregateError of per-address errors.
  if (Array.isArray(e.errors) && e.errors.length > 0) {
    const inner = describeConnectionError(e.errors[0]);
    if (inner) return inner;
  }
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (NETWORK_CODES.has(code)) {
    const where = typeof e.address === 'string' ? ` ${e.address}${e.port === undefined ? '' : `:${String(e.port)}`}` : '';
    return `${code}${where}`;
  }
  // PostgreSQL SQLSTATE: class 08 connection exception, class 28 invalid authorization, 3D000 no such
  // database, 57P03 cannot connect now.
  if (typeof e.severity === 'string' && /^(08|28)|^3D000$|^57P03$/.test(code)) return `${message} (SQLSTATE ${code})`;
  if (/^Connection terminated|^timeout expired|connection timeout/i.test(message)) return message;
  return null;
}

/** An error from PostgreSQL itself (it carries a severity and a five-character SQLSTATE), or null. */
function describeDatabaseError(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const e = error as ErrorFields;
  if (typeof e.severity !== 'string' || typeof e.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) return null;
  return `database error: ${error.message} (SQLSTATE ${e.code})`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Writes an error to `io.err` and returns the exit code for it. User errors (Warden errors, {@link CliError},
 * database connection failures) are one line; anything else is one line plus, with `WARDEN_DEBUG=1`, the stack.
 */
export function reportError(error: unknown, io: CliIo): number {
  const debug = process.env.WARDEN_DEBUG === '1';
  const stack = (e: unknown) => (debug && e instanceof Error && e.stack ? `${e.stack}\n` : '');
  if (error instanceof CliError) {
    io.err(`warden: ${oneLine(error.message)}\n${stack(error.cause ?? error)}`);
    return error.exitCode;
  }
  if (isWardenError(error)) {
    io.err(`warden: ${oneLine(error.message)}\n${stack(error)}`);
    return EXIT_FAILURE;
  }
  const connection = describeConnectionError(error);
  const known = connection === null ? describeDatabaseError(error) : `Expected a reachable database, got ${connection}`;
  if (known) {
    io.err(`warden: ${oneLine(known)}\n${stack(error)}`);
    return EXIT_FAILURE;
  }
  const summary = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const hint = debug ? '' : ' (set WARDEN_DEBUG=1 for the stack trace)';
  io.err(`warden: unexpected error: ${oneLine(summary)}${hint}\n${stack(error)}`);
  return EXIT_FAILURE;
}
