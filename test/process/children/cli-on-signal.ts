/**
 * Runs the `warden` CLI (`runCli`, what the `warden` executable `src/cli/main.ts` runs) in this process once told
 * to, so several processes can start one command at the same moment: it loads the CLI, prints `ready`, waits for
 * SIGUSR2 (SIGUSR1 belongs to Node's inspector), runs `warden <args>` capturing its output, prints `result`
 * (exit code, stdout, stderr, and start and end on the machine's monotonic clock) and exits with the CLI's code.
 * @module
 */
import { runCli } from '../../../src/cli/run-cli.js';
import { monotonicMs } from './monotonic-clock.js';
import { type BaseConfig, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  /** The CLI's arguments, e.g. `['migrate', '--json', '--database', url]`. */
  args: string[];
}

reportCrashes();
const config = readConfig<Config>();
// A signal listener alone does not keep Node running: the timer does, until the signal came.
const keepAlive = setInterval(() => {}, 60_000);
const go = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
send({ type: 'ready', name: config.name, pid: process.pid });
await go;
clearInterval(keepAlive);

let out = '';
let err = '';
const startedAt = monotonicMs();
const code = await runCli(config.args, { out: (text) => void (out += text), err: (text) => void (err += text) });
send({ type: 'result', name: config.name, code, out, err, startedAt, endedAt: monotonicMs() });
process.exit(code);
