/**
 * `warden locks list`: the lease locks in the database, with holder, newest fencing token and expiry.
 * @module
 */
import type { Command } from 'commander';
import type { LockRow } from '../../driver/lock-params.js';
import { type CliIo, formatDate, formatMs, formatTable, writeJson, writeLines } from '../cli-io.js';
import { type GlobalOptions, withWarden } from '../open-warden.js';
import type { CommandRunner } from './command-runner.js';

/** Whether a lock is held: `held` (unexpired grant), `expired` (its holder let the lease run out), `free` (released). */
export type LockState = 'held' | 'expired' | 'free';

/** A lock row with its state at the database's time. */
export interface LockListRow extends LockRow {
  state: LockState;
}

/** A lock's state at `now` (database time). */
export function lockState(lock: LockRow, now: Date): LockState {
  if (lock.holder === null || lock.expiresAt === null) return 'free';
  return lock.expiresAt.getTime() > now.getTime() ? 'held' : 'expired';
}

function expiry(lock: LockRow, now: Date): string {
  if (!lock.expiresAt) return '-';
  const delta = lock.expiresAt.getTime() - now.getTime();
  return `${formatDate(lock.expiresAt)} (${delta > 0 ? `in ${formatMs(delta)}` : `${formatMs(-delta)} ago`})`;
}

/**
 * Lists every lock (a lock row is never deleted, so released ones show as `free` with their last token), with
 * its state computed against the database's clock. `--json` prints the array of lock rows, each with `state`.
 * @returns 0
 */
export async function locksListCommand(options: GlobalOptions, io: CliIo): Promise<number> {
  return withWarden(options, {}, async (warden) => {
    const locks = await warden.locks.list();
    const now = await warden.driver.dbNow();
    const rows: LockListRow[] = locks.map((l) => ({ ...l, state: lockState(l, now) }));
    if (options.json) writeJson(io, rows);
    else if (rows.length === 0) writeLines(io, ['no locks']);
    else {
      writeLines(io, formatTable(
        ['NAME', 'HOLDER', 'TOKEN', 'ACQUIRED', 'EXPIRES', 'STATE'],
        rows.map((l) => [l.name, l.holder ?? '-', String(l.token), formatDate(l.acquiredAt), expiry(l, now), l.state]),
      ));
    }
    return 0;
  });
}

/** Adds `locks` and its subcommands to the program. */
export function registerLocksCommands(program: Command, run: CommandRunner): void {
  const locks = program.command('locks').description('list lease locks');
  locks
    .command('list')
    .description('list lease locks: holder, newest fencing token, acquired, expires, state (held, expired or free, by database time)')
    .action((_options: object, command: Command) => run(locksListCommand, command.optsWithGlobals<GlobalOptions>()));
}
