/**
 * Child processes that start fast: a child script bundled once with esbuild (the TypeScript compiler `tsx` itself
 * runs on) into one ES module, then started with plain `node`. A `tsx` child spends about a second compiling
 * Warden's sources at every start; a bundled one starts in a fraction of that. For tests that start hundreds of
 * short-lived children (a crash test that kills one per crash), that is the difference between seconds and minutes.
 *
 * Packages stay external and are loaded from the repository's `node_modules`, so the bundle is written below
 * `node_modules/.cache/` where Node resolves them. Children are tracked like those of `child-process.ts`: call
 * {@link killAllBundled} in `afterEach`.
 * @module
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Child, killChild, REPO_ROOT } from './child-process.js';

const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'warden-test-children');

/** A bundled child script: its path, and a function that deletes it. */
export interface Bundle {
  readonly path: string;
  remove(): Promise<void>;
}

/** Bundles `test/process/children/<script>` (and the Warden sources it imports) into one ES module. */
export async function bundleChild(script: string): Promise<Bundle> {
  await mkdir(CACHE_DIR, { recursive: true });
  const path = join(CACHE_DIR, `${script.replace(/\.ts$/, '')}-${process.pid}-${randomBytes(4).toString('hex')}.mjs`);
  await build({
    entryPoints: [fileURLToPath(new URL(`./children/${script}`, import.meta.url))],
    outfile: path,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'error',
  });
  return { path, remove: () => rm(path, { force: true }) };
}

const live = new Set<Child>();

/** Starts a bundled child as `node --enable-source-maps <bundle> <JSON config>`; stdout is read as in `spawnChild`. */
export function spawnBundled(name: string, bundle: Bundle, config: unknown, env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, ['--enable-source-maps', bundle.path, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WARDEN_LOG_LEVEL: 'silent', ...env },
  });
  const child = new Child(name, proc);
  live.add(child);
  void child.closed.then(() => live.delete(child));
  return child;
}

/** Kills every bundled child still running. For `afterEach`. */
export async function killAllBundled(): Promise<void> {
  await Promise.allSettled([...live].map((c) => killChild(c)));
}

process.once('exit', () => {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});
