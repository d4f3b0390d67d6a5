/**
 * Reading an audit chain out: entries in seq order, paged, and their JSON Lines and CSV forms. JSON Lines is the
 * form to re-verify from (each line is the entry's canonical JSON, nulls and types intact; see docs/audit.md);
 * CSV is for spreadsheets and loses the difference between null and an empty string.
 * @module
 */
import { DEFAULT_AUDIT_PAGE, type AuditEntry } from '../driver/audit-params.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { canonicalJson } from './audit-hash.js';

/** The export formats. */
export type AuditExportFormat = 'jsonl' | 'csv';

/** Every export format. */
export const AUDIT_EXPORT_FORMATS: readonly AuditExportFormat[] = ['jsonl', 'csv'];

/** The CSV columns, in order: the entry's fields in snake case, `data` as canonical JSON. */
export const AUDIT_CSV_COLUMNS = [
  'seq', 'at', 'chain', 'actor', 'action', 'subject_kind', 'subject_id', 'job_name', 'queue', 'before', 'after', 'reason', 'data', 'prev_hash', 'hash',
] as const;

/** Which entries to read. */
export interface AuditReadOptions {
  chain: string;
  /** Only entries at or after this time. @default the start of the chain */
  since?: Date;
  /** Only entries before this time. @default no end */
  until?: Date;
  /** Only entries after this seq. @default 0 */
  afterSeq?: number;
  /** Entries per query. @default 5000 ({@link DEFAULT_AUDIT_PAGE}) */
  pageSize?: number;
}

/** The entries of a chain in seq order, read a page at a time. */
export async function* readAuditEntries(driver: Pick<Driver, 'auditList'>, options: AuditReadOptions): AsyncGenerator<AuditEntry> {
  const limit = options.pageSize ?? DEFAULT_AUDIT_PAGE;
  let afterSeq = options.afterSeq ?? 0;
  for (;;) {
    const page = await driver.auditList({ chain: options.chain, afterSeq, since: options.since, until: options.until, limit });
    yield* page;
    if (page.length < limit) return;
    afterSeq = page[page.length - 1]!.seq;
  }
}

/** One JSON Lines line: the entry's canonical JSON (every field, `at` as an ISO string) and a newline. */
export function auditJsonLine(entry: AuditEntry): string {
  return `${safeCanonical({ ...entry })}\n`;
}

/** Canonical JSON, or plain JSON for a value that has none (a tampered row holding a fraction): export never fails. */
function safeCanonical(value: unknown): string {
  try {
    return canonicalJson(value);
  } catch {
    return JSON.stringify(value);
  }
}

/** One CSV field per RFC 4180: quoted when it holds a comma, quote, CR or LF, or starts or ends with a space. */
function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV header line. */
export function auditCsvHeader(): string {
  return `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
}

/** One CSV line (CRLF-terminated, as RFC 4180 says). */
export function auditCsvLine(e: AuditEntry): string {
  const cells = [
    e.seq, e.at.toISOString(), e.chain, e.actor, e.action, e.subjectKind, e.subjectId, e.jobName, e.queue, e.before, e.after, e.reason,
    e.data === null ? null : safeCanonical(e.data), e.prevHash, e.hash,
  ];
  return `${cells.map(csvField).join(',')}\r\n`;
}

/**
 * The export of a chain as text chunks (a header first for CSV, then one line per entry), streamed page by page.
 * @throws InvalidOptionError for an unknown format.
 */
export async function* exportAuditEntries(driver: Pick<Driver, 'auditList'>, options: AuditReadOptions & { format: AuditExportFormat }): AsyncGenerator<string> {
  if (!AUDIT_EXPORT_FORMATS.includes(options.format)) throw new InvalidOptionError('format', options.format, `one of ${AUDIT_EXPORT_FORMATS.join(', ')}`);
  const line = options.format === 'csv' ? auditCsvLine : auditJsonLine;
  if (options.format === 'csv') yield auditCsvHeader();
  for await (const entry of readAuditEntries(driver, options)) yield line(entry);
}
