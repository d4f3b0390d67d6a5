import type { ErrorInfo } from '../job/job-record.js';

/** Longest stack kept per attempt, so a pathological error cannot bloat the attempts table. */
const MAX_STACK = 8_000;
const MAX_MESSAGE = 2_000;
const MAX_NAME = 200;

/**
 * Turns anything thrown into a storable {@link ErrorInfo}; never throws itself.
 *
 * `redact`, when given, is applied to every text (name, message, stack, issue messages) **before** it is cut to
 * its length limit: cut first, a secret straddling the limit would no longer match and its first characters would
 * be stored, and from there logged, announced, traced and audited. The whole text is redacted, however long;
 * the work is linear in what the handler threw.
 * @param redact removes secret values from a text (a job's `Redactor.text`); must not throw.
 */
export function toErrorInfo(error: unknown, redact?: (text: string) => string): ErrorInfo {
  const text = (value: string, max: number) => truncate(redact ? redact(value) : value, max);
  if (error instanceof Error) {
    const info: ErrorInfo = { name: text(error.name || 'Error', MAX_NAME), message: text(String(error.message), MAX_MESSAGE) };
    if (error.stack) info.stack = text(error.stack, MAX_STACK);
    const issues = (error as { issues?: unknown }).issues;
    if (Array.isArray(issues)) {
      info.issues = issues.map((i: { message?: unknown; path?: unknown }) => ({
        message: text(String(i?.message), MAX_MESSAGE),
        // Path segments are key names, not values: they are kept as they are (cut only), as the redactor does.
        path: Array.isArray(i?.path) ? i.path.map((p: unknown) => (typeof p === 'number' ? p : truncate(String(p), MAX_NAME))) : [],
      }));
    }
    return info;
  }
  let message: string;
  try {
    message = typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  } catch {
    message = String(error);
  }
  return { name: 'NonError', message: text(`A non-Error value was thrown: ${message}`, MAX_MESSAGE) };
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
