/**
 * The hash chain of the audit trail: the canonical JSON of an entry, its hash, and sealing a batch onto a chain's
 * head. Pure functions, shared by both drivers (which seal inside their append transaction) and by `verify`, so
 * what is written and what is checked cannot drift apart. The same rules are written out for auditors in
 * docs/audit.md ("Canonical form"); change one, change both.
 * @module
 */
import * as crypto from 'node:crypto';
import type { AuditEntry, AuditEntryInput } from '../driver/audit-params.js';
import { InvalidOptionError } from '../errors.js';

/** The `prevHash` of a chain's first entry: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** Nesting past which `data` is cut (`"[too deep]"`), so a pathological value cannot blow the stack. */
const MAX_DEPTH = 32;

/**
 * The entry fields the hash covers, i.e. every field except `prevHash` and `hash`. The canonical JSON has exactly
 * these keys, sorted; null where absent.
 */
export const HASHED_FIELDS = [
  'action', 'actor', 'after', 'at', 'before', 'chain', 'data', 'jobName', 'queue', 'reason', 'seq', 'subjectId', 'subjectKind',
] as const;

/**
 * Canonical JSON: `JSON.stringify` text with object keys sorted (by UTF-16 code unit, which is byte order for the
 * ASCII keys Warden writes), no whitespace, Dates as ISO-8601 strings with milliseconds (`toISOString`), object
 * members whose value is `undefined` left out. Numbers must be safe integers: other numbers have no single
 * portable text form, so {@link normalizeAuditValue} turns them into strings before anything is stored.
 * @throws InvalidOptionError for a number that is not a safe integer, or a value JSON cannot hold.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new InvalidOptionError('an audit value', value, 'a safe integer (other numbers are stored as strings)');
      return String(value);
    case 'object': {
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const record = value as Record<string, unknown>;
      // Concatenated, not collected and joined: every entry's `data` goes through here on append and verify.
      let text = '';
      for (const key of sortedKeys(record)) {
        const member = record[key];
        if (member === undefined) continue;
        text += `${text === '' ? '' : ','}${jsonString(key)}:${canonicalJson(member)}`;
      }
      return `{${text}}`;
    }
    default:
      throw new InvalidOptionError('an audit value', value, 'JSON (null, a string, a safe integer, a boolean, an array or a plain object)');
  }
}

/**
 * `Object.keys(record).sort()`, without the sort when the keys are already in order: Warden's own entries are
 * built in key order, and `sort` allocates working storage on every call (a fifth of what sealing allocated).
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return keys.sort();
  return keys;
}

/** The object the hash covers: the {@link HASHED_FIELDS} of `entry`. */
export function hashedBody(entry: Omit<AuditEntry, 'prevHash' | 'hash'>): Record<string, unknown> {
  return {
    action: entry.action,
    actor: entry.actor,
    after: entry.after,
    at: entry.at,
    before: entry.before,
    chain: entry.chain,
    data: entry.data,
    jobName: entry.jobName,
    queue: entry.queue,
    reason: entry.reason,
    seq: entry.seq,
    subjectId: entry.subjectId,
    subjectKind: entry.subjectKind,
  };
}

/** sha256, lowercase hex, of the UTF-8 bytes of `prevHash` followed by the entry's canonical JSON. */
export function entryHash(prevHash: string, entry: Omit<AuditEntry, 'prevHash' | 'hash'>): string {
  return sha256Hex(hashInput(prevHash, entry, entry.data === null ? 'null' : canonicalJson(entry.data), JSON.stringify(entry.at.toISOString())));
}

/**
 * Node's one-shot `crypto.hash` (Node 20.12+): about half the cost of `createHash().update().digest()` for an
 * entry-sized text, which is hashed once per entry on append and on verify. Older Node 20 releases lack it.
 */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

function sha256Hex(input: string): string {
  // A string is hashed as its UTF-8 bytes either way.
  return oneShotHash ? oneShotHash('sha256', input, 'hex') : crypto.createHash('sha256').update(input, 'utf8').digest('hex');
}

/** Characters `JSON.stringify` escapes in a string (controls, the quote, the backslash) and UTF-16 surrogates. */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * A string field, or null, as canonical JSON: exactly `JSON.stringify(value)`, without calling it for the plain
 * strings that are nearly all of them (ten fields an entry; this halves their cost).
 */
export function jsonString(value: string | null): string {
  if (value === null) return 'null';
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** Each hashed field of an entry already written as JSON (`seq` as its digits), as {@link hashedText} takes them. */
interface EncodedFields {
  action: string; actor: string; after: string; at: string; before: string; chain: string; data: string;
  jobName: string; queue: string; reason: string; seq: string; subjectId: string; subjectKind: string;
}

/**
 * What an entry's hash is taken of: `prevHash` followed by the canonical JSON of its hashed fields, written out in
 * sorted key order (no intermediate object, no sort: this runs for every entry sealed and every entry verified),
 * `prevHash` in the same template rather than concatenated after, so the text is built once. The one place this
 * text is written: {@link entryHash} (verify) and {@link sealBatch} (append) both come here.
 */
function hashedText(prevHash: string, f: EncodedFields): string {
  return `${prevHash}{"action":${f.action},"actor":${f.actor},"after":${f.after},"at":${f.at},"before":${f.before},"chain":${f.chain},"data":${f.data},"jobName":${f.jobName},"queue":${f.queue},"reason":${f.reason},"seq":${f.seq},"subjectId":${f.subjectId},"subjectKind":${f.subjectKind}}`;
}

/**
 * {@link hashedText} of `entry`; `dataJson` and `atJson` are the canonical JSON of `entry.data` and `entry.at`. An
 * entry whose seq is no safe integer (only an edited one) goes through {@link canonicalJson}, which refuses it.
 */
function hashInput(prevHash: string, e: Omit<AuditEntry, 'prevHash' | 'hash'>, dataJson: string, atJson: string): string {
  if (!Number.isSafeInteger(e.seq)) return prevHash + canonicalJson(hashedBody(e));
  return hashedText(prevHash, {
    action: jsonString(e.action), actor: jsonString(e.actor), after: jsonString(e.after), at: atJson, before: jsonString(e.before),
    chain: jsonString(e.chain), data: dataJson, jobName: jsonString(e.jobName), queue: jsonString(e.queue), reason: jsonString(e.reason),
    seq: String(e.seq), subjectId: jsonString(e.subjectId), subjectKind: jsonString(e.subjectKind),
  });
}

/**
 * A storable copy of a string: U+0000 replaced (PostgreSQL text and jsonb reject it) and lone surrogates made
 * well-formed, so the text read back is exactly the text hashed.
 */
export function storableText(text: string): string {
  return text.includes('\u0000') || !text.isWellFormed() ? text.replaceAll('\u0000', '\uFFFD').toWellFormed() : text;
}

/**
 * `value` as plain JSON that survives storage unchanged and has one canonical form: strings made storable,
 * Dates as ISO strings, integers kept, other numbers (fractions, NaN, ±Infinity) and bigints as strings, `undefined`
 * members dropped, functions and symbols as null, Maps/Sets/class instances as their own enumerable properties.
 */
export function normalizeAuditValue(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return storableText(value);
    case 'boolean':
      return value;
    case 'number':
      return Number.isSafeInteger(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'object': {
      if (depth >= MAX_DEPTH) return '[too deep]';
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (Array.isArray(value)) return value.map((item) => normalizeAuditValue(item, depth + 1));
      const record = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(record)) {
        const item = record[key];
        if (item === undefined) continue;
        out[storableText(key)] = normalizeAuditValue(item, depth + 1);
      }
      return out;
    }
    default:
      return null;
  }
}

/** An optional text field as stored: null when absent, else storable. */
function optionalText(value: string | null | undefined): string | null {
  return value === null || value === undefined ? null : storableText(String(value));
}

/** Whether `value` has an own enumerable key, without listing them all. */
function hasKeys(value: object): boolean {
  for (const key in value) if (Object.hasOwn(value, key)) return true;
  return false;
}

/**
 * The entry `input` becomes at (`chain`, `seq`, `at`) after `prevHash`, every field normalized as stored (strings
 * storable, `data` plain JSON, null when empty), its `hash` still to be set. One object literal with every field:
 * an entry is made for each record written.
 */
function unsealedEntry(input: AuditEntryInput, chain: string, seq: number, at: Date, prevHash: string): AuditEntry {
  const data = input.data === null || input.data === undefined ? null : (normalizeAuditValue(input.data) as Record<string, unknown>);
  return {
    actor: storableText(String(input.actor)),
    action: storableText(String(input.action)),
    subjectKind: input.subjectKind,
    subjectId: storableText(String(input.subjectId)),
    jobName: optionalText(input.jobName),
    queue: optionalText(input.queue),
    before: optionalText(input.before),
    after: optionalText(input.after),
    reason: optionalText(input.reason),
    data: data !== null && typeof data === 'object' && !Array.isArray(data) && hasKeys(data) ? data : null,
    chain,
    seq,
    at,
    prevHash,
    hash: '',
  };
}

/** A sealed batch: the entries, and the block they are stored as. */
export interface SealedBatch {
  entries: AuditEntry[];
  /**
   * The batch as one block (`audit_blocks.entries`, see `src/audit/audit-block.ts`): a JSON array with one row per
   * entry, `[seq, actor, action, subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash,
   * hash]` ({@link AUDIT_ROW_FIELDS}), `data` as its canonical JSON. Chain and time are the block's.
   */
  block: string;
}

/** The fields of an entry in a stored block's row, in order; the chain and the time are the block's. */
export const AUDIT_ROW_FIELDS = ['seq', 'actor', 'action', 'subjectKind', 'subjectId', 'jobName', 'queue', 'before', 'after', 'reason', 'data', 'prevHash', 'hash'] as const;

/**
 * Seals `inputs` onto a chain whose newest entry is (`head.seq`, `head.hash`): consecutive seqs, the same `at`,
 * each hash over the one before. Drivers call this while holding the chain's head row, so no other append can
 * interleave. `at` is truncated to whole milliseconds, the precision both databases store.
 * Returns the entries and the block to store. Each field is written as JSON once, for both the hashed text (the
 * canonical JSON, as {@link entryHash} writes it) and the stored row.
 */
export function sealBatch(chain: string, head: { seq: number; hash: string }, at: Date, inputs: readonly AuditEntryInput[]): SealedBatch {
  const time = new Date(Math.trunc(at.getTime()));
  const atJson = JSON.stringify(time.toISOString());
  const chainJson = jsonString(chain);
  let seq = head.seq;
  let prevHash = head.hash;
  const entries: AuditEntry[] = [];
  let block = '';
  for (const input of inputs) {
    seq += 1;
    const e = unsealedEntry(input, chain, seq, time, prevHash);
    const f: EncodedFields = {
      action: jsonString(e.action), actor: jsonString(e.actor), after: jsonString(e.after), at: atJson, before: jsonString(e.before),
      chain: chainJson, data: e.data === null ? 'null' : canonicalJson(e.data), jobName: jsonString(e.jobName), queue: jsonString(e.queue),
      reason: jsonString(e.reason), seq: String(seq), subjectId: jsonString(e.subjectId), subjectKind: jsonString(e.subjectKind),
    };
    e.hash = sha256Hex(hashedText(prevHash, f));
    block += `${block === '' ? '[' : ','}[${f.seq},${f.actor},${f.action},${f.subjectKind},${f.subjectId},${f.jobName},${f.queue},${f.before},${f.after},${f.reason},${f.data},${jsonString(prevHash)},"${e.hash}"]`;
    entries.push(e);
    prevHash = e.hash;
  }
  return { entries, block: block === '' ? '[]' : `${block}]` };
}
