import type { ErrorInfo } from '../job/job-record.js';

/** Longest stack kept per attempt, so a pathological error cannot bloat the attempts table. */
const MAX_STACK = 8_000;
const MAX_MESSAGE = 2_000;

/** Turns anything thrown into a storable {@link ErrorInfo}; never throws itself. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const info: ErrorInfo = { name: truncate(error.name || 'Error', 200), message: truncate(String(error.message), MAX_MESSAGE) };
    if (error.stack) info.stack = truncate(error.stack, MAX_STACK);
    const issues = (error as { issues?: unknown }).issues;
    if (Array.isArray(issues)) {
      info.issues = issues.map((i: { message?: unknown; path?: unknown }) => ({
        message: truncate(String(i?.message), MAX_MESSAGE),
        path: Array.isArray(i?.path) ? i.path.map((p: unknown) => (typeof p === 'number' ? p : truncate(String(p), 200))) : [],
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
  return { name: 'NonError', message: truncate(`A non-Error value was thrown: ${message}`, MAX_MESSAGE) };
}

/**
 * Cuts a text to `max` characters and makes it storable everywhere: PostgreSQL's jsonb rejects U+0000 and lone
 * surrogates, and one unstorable error must never block the batch of endings it is written with.
 */
function truncate(text: string, max: number): string {
  const cut = text.length > max ? `${text.slice(0, max - 3)}...` : text;
  return cut.replaceAll('\u0000', '\uFFFD').toWellFormed();
}
