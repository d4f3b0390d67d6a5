/**
 * Which Warden code a run measured: the commit, and whether src/ had uncommitted changes (other work in the
 * same tree changes what the benchmark runs, so the report says so).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function git(...args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** E.g. "0364aae (Index each schedule's newest tick …), src/ with 12 uncommitted changes". */
export function describeCode(): string {
  const head = git('log', '-1', '--format=%h (%s)');
  const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
  if (!head) return 'unknown (not a git checkout)';
  return `${head}${dirty > 0 ? `, src/ with ${dirty} uncommitted change(s)` : ', src/ clean'}`;
}
