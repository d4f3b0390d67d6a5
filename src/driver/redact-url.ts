/**
 * Database URLs as they may appear in messages: with every password hidden.
 * @module
 */

/** What stands in for a hidden password. */
const HIDDEN = '***';

/**
 * A database URL with its passwords replaced by `***`, for error messages and logs: the userinfo password
 * (`postgres://user:***@host/db`, the whole of it even when it contains `:`) and every query parameter whose name
 * contains `password` (`?password=`, `?sslpassword=`, which pg reads as well). A URL that does not parse, or has an
 * `@` the parser does not read as userinfo (no `//`, so no authority), is shown as its scheme and
 * `<unparseable url>` only: what part of it is a secret cannot be told, so none of it is printed.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${/^[a-z][a-z0-9+.-]*:(?:\/\/)?/i.exec(url)?.[0] ?? ''}<unparseable url>`;
  }
  if (parsed.host === '' && url.includes('@')) return `${parsed.protocol}<unparseable url>`;
  if (parsed.password !== '') parsed.password = HIDDEN;
  for (const key of [...new Set(parsed.searchParams.keys())]) {
    if (/password/i.test(key)) parsed.searchParams.set(key, HIDDEN);
  }
  return parsed.href;
}
