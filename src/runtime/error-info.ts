import type { ErrorInfo } from '../job/job-record.js';

/** Longest stack kept per attempt, so a pathological error cannot bloat the attempts table. */
const MAX_STACK = 8_000;
const MAX_MESSAGE = 2_000;

/** Turns anything thrown into a storable {@link ErrorInfo}; never throws itself. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const info: ErrorInfo = { name: error.name || 'Error', message: truncate(String(error.message), MAX_MESSAGE) };
    if (error.stack) info.stack = truncate(error.stack, MAX_STACK);
    const issues = (error as { issues?: unknown }).issues;
    if (Array.isArray(issues)) info.issues = issues as ErrorInfo['issues'];
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

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
