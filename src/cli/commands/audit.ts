/**
 * `warden audit verify|head|export|prune`: check the audit trail's hash chain, print its head to keep elsewhere,
 * export it as JSON Lines or CSV, and prune old entries. See docs/audit.md.
 * @module
 */
import type { Command } from 'commander';
import { AUDIT_EXPORT_FORMATS, type AuditExportFormat } from '../../audit/audit-export.js';
import { GENESIS_HASH } from '../../audit/audit-hash.js';
import type { AuditVerifyResult } from '../../audit/audit-verify.js';
import { DEFAULT_AUDIT_PAGE } from '../../driver/audit-params.js';
import { InvalidOptionError } from '../../errors.js';
import { type CliIo, formatDate, formatFields, writeJson, writeLines } from '../cli-io.js';
import { cliActor, type GlobalOptions, withWarden } from '../open-warden.js';
import { parseIntegerOption } from '../parse-options.js';
import type { CommandRunner } from './command-runner.js';

/** Options every `audit` subcommand takes. */
export interface AuditCommandOptions extends GlobalOptions {
  /** @default "default" */
  chain?: string;
}

/** Options of {@link auditVerifyCommand}. */
export interface AuditVerifyCommandOptions extends AuditCommandOptions {
  /** `<seq>:<hash>` printed earlier by `warden audit head`. */
  head?: string;
  /** Entries read per query. @default 1000 */
  pageSize?: string;
}

/** Options of {@link auditExportCommand}. */
export interface AuditExportCommandOptions extends AuditCommandOptions {
  /** ISO-8601 time: only entries at or after it. @default the start */
  since?: string;
  /** ISO-8601 time: only entries before it. @default no end */
  until?: string;
  /** @default "jsonl" */
  format?: string;
}

/** Options of {@link auditPruneCommand}. */
export interface AuditPruneCommandOptions extends AuditCommandOptions {
  /** ISO-8601 time: entries before it are deleted. */
  before: string;
}

/** `YYYY-MM-DD`, optionally `[T ]HH:MM[:SS[.fff]]` and an offset (`Z`, `+02:00`, `-0500`). */
const TIME_OPTION = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|([+-])(\d\d):?(\d\d))?)?$/;

/**
 * A time option as a Date: an ISO-8601 date or date-time (`2024-05-01`, `2024-05-01T12:00`, `2024-05-01T12:00:00Z`,
 * `2024-05-01T14:00+02:00`). A date, or a time without an offset, is UTC, whatever the host's time zone: the same
 * command prunes or exports the same entries on every machine (a date alone was always UTC; a time without an offset
 * would otherwise be host-local).
 * @throws InvalidOptionError for anything else, and for a date or time that does not exist (`2024-02-31`,
 *   `2023-02-29`, `25:00`), which `new Date()` would silently roll forward (`2024-02-31` read as 2 March).
 */
export function parseTimeOption(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const refuse = (): never => {
    throw new InvalidOptionError(flag, value, 'an ISO-8601 date or time that exists, e.g. 2024-05-01 or 2024-05-01T12:00:00Z (UTC unless an offset is given)');
  };
  const m = TIME_OPTION.exec(value.trim()) ?? refuse();
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, ms);
  // Date rolls impossible fields over (31 February is 2 March); reading back the typed digits catches that.
  const readBack = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()];
  if (readBack.some((n, i) => n !== [y, mo, d, h, mi, sec][i])) refuse();
  if (m[9] !== undefined) {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) refuse();
    date.setTime(date.getTime() - (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000);
  }
  return date;
}

/** The text report of a verification. */
export function verifyLines(r: AuditVerifyResult): string[] {
  const range = r.checked === 0 ? 'no entries' : `${r.checked} entr${r.checked === 1 ? 'y' : 'ies'} (seq ${r.firstSeq}-${r.firstSeq + r.checked - 1})`;
  const lines: string[] = [];
  if (r.break) {
    lines.push(`audit chain "${r.chain}": BROKEN at entry ${r.break.seq} (${r.break.kind})`, `  ${r.break.message}`);
    if (r.break.expected !== null) lines.push(`  expected: ${r.break.expected}`);
    if (r.break.actual !== null) lines.push(`  found:    ${r.break.actual}`);
    lines.push(`  intact before it: ${range}`);
  } else {
    lines.push(`audit chain "${r.chain}": intact, ${range}`, `  head: ${r.end.seq}:${r.end.hash}`);
    if (r.firstSeq > 1) lines.push(`  entries 1-${r.firstSeq - 1} were pruned`);
    if (r.exportedHead) lines.push(`  contains the exported head ${r.exportedHead.seq}:${r.exportedHead.hash}`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines;
}

/**
 * Walks the chain and reports the first broken entry; `--head <seq>:<hash>` also checks that an exported head is
 * still there (a truncated tail). `--json` prints the result object.
 * @returns 0 when the chain is intact, 1 when it is broken.
 */
export async function auditVerifyCommand(options: AuditVerifyCommandOptions, io: CliIo): Promise<number> {
  const pageSize = parseIntegerOption('--page-size', options.pageSize);
  return withWarden(options, {}, async (warden) => {
    const result = await warden.audit.verify({ chain: options.chain, head: options.head, pageSize });
    if (options.json) writeJson(io, result);
    else writeLines(io, verifyLines(result));
    return result.ok ? 0 : 1;
  });
}

/**
 * Prints the chain's newest entry as `<seq>:<hash>` (`0:000…` for an empty chain), to store outside the database
 * and pass to `audit verify --head` later. `--json` prints `{ chain, seq, hash, at, prunedSeq, prunedHash, ref }`.
 * @returns 0
 */
export async function auditHeadCommand(options: AuditCommandOptions, io: CliIo): Promise<number> {
  return withWarden(options, {}, async (warden) => {
    const head = await warden.audit.head({ chain: options.chain });
    const chain = options.chain ?? warden.audit.chain;
    const shown = head ?? { chain, seq: 0, hash: GENESIS_HASH, at: null, prunedSeq: 0, prunedHash: GENESIS_HASH, ref: `0:${GENESIS_HASH}` };
    if (options.json) writeJson(io, shown);
    else writeLines(io, [shown.ref]);
    return 0;
  });
}

/**
 * Writes the chain's entries (in seq order, within `--since`/`--until`) to stdout as JSON Lines (each line the
 * entry's canonical JSON; the form to re-verify from) or CSV. `--json` does not apply; `--format` decides. Keeps to
 * the reader's pace: while the output is full, no further entry (nor page of entries) is read. Stops when the reader
 * closes the output (`CliOutputError`, exit 0 for a closed pipe).
 * @returns 0
 */
export async function auditExportCommand(options: AuditExportCommandOptions, io: CliIo): Promise<number> {
  const format = (options.format ?? 'jsonl') as AuditExportFormat;
  if (!AUDIT_EXPORT_FORMATS.includes(format)) throw new InvalidOptionError('--format', options.format, AUDIT_EXPORT_FORMATS.join(' or '));
  const since = parseTimeOption('--since', options.since);
  const until = parseTimeOption('--until', options.until);
  return withWarden(options, {}, async (warden) => {
    for await (const chunk of warden.audit.export({ chain: options.chain, since, until, format })) {
      // Read on only once the reader has taken what is buffered: a slow reader would otherwise have the whole chain
      // queued in this process's memory.
      if (io.out(chunk) === false) await io.drain?.();
    }
    return 0;
  });
}

/**
 * Deletes the entries before `--before` and records an `audit.pruned` entry attributed to `cli:<user>`. `--json`
 * prints `{ chain, deleted }`.
 * @returns 0
 */
export async function auditPruneCommand(options: AuditPruneCommandOptions, io: CliIo): Promise<number> {
  const before = parseTimeOption('--before', options.before)!;
  return withWarden(options, {}, async (warden) => {
    const chain = options.chain ?? warden.audit.chain;
    const deleted = await warden.audit.prune({ chain, before, actor: cliActor(), reason: options.reason });
    if (options.json) writeJson(io, { chain, deleted });
    else writeLines(io, formatFields([['chain', chain], ['deleted', `${deleted} entr${deleted === 1 ? 'y' : 'ies'} before ${formatDate(before)}`]]));
    return 0;
  });
}

/** Adds `audit` and its subcommands to the program. */
export function registerAuditCommands(program: Command, run: CommandRunner): void {
  const audit = program.command('audit').description('verify, export and prune the tamper-evident audit trail');
  const chain = (c: Command) => c.option('--chain <name>', 'the audit chain (default: default)');
  chain(audit.command('verify'))
    .description('walk the hash chain and report the first broken entry (edited, missing, reordered, truncated); exit 1 when broken')
    .option('--head <seq:hash>', 'a head printed earlier by `warden audit head`: the chain must still contain it')
    .option('--page-size <n>', `entries read per query (default ${DEFAULT_AUDIT_PAGE})`)
    .action((_options: object, command: Command) => run(auditVerifyCommand, command.optsWithGlobals<AuditVerifyCommandOptions>()));
  chain(audit.command('head'))
    .description('print the newest entry as <seq>:<hash>, to store outside the database for `verify --head`')
    .action((_options: object, command: Command) => run(auditHeadCommand, command.optsWithGlobals<AuditCommandOptions>()));
  chain(audit.command('export'))
    .description('write the entries to stdout as JSON Lines (re-verifiable) or CSV')
    .option('--since <time>', 'only entries at or after this ISO-8601 date or time (UTC unless it has an offset)')
    .option('--until <time>', 'only entries before this ISO-8601 date or time (UTC unless it has an offset)')
    .option('--format <format>', 'jsonl or csv (default jsonl)')
    .action((_options: object, command: Command) => run(auditExportCommand, command.optsWithGlobals<AuditExportCommandOptions>()));
  chain(audit.command('prune'))
    .description('delete the entries before a time (the trail keeps everything otherwise); recorded as an audit.pruned entry')
    .requiredOption('--before <time>', 'delete entries before this ISO-8601 date or time, UTC unless it has an offset (the global --reason is recorded with the prune)')
    .action((_options: object, command: Command) => run(auditPruneCommand, command.optsWithGlobals<AuditPruneCommandOptions>()));
}
