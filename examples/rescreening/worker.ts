/**
 * The crash demo's worker process (`--crash`): `run-demo.ts` starts it with the example's settings in its
 * environment and the fake service's URL in `RESCREEN_SERVICE_URL`, SIGKILLs it mid-run, and starts another.
 * It runs Warden's worker and scheduler until SIGTERM (graceful) and prints one line per event on stdout.
 *
 * The lease is short (3 s, heartbeats every second) so that a killed worker's run is rescued and resumed within
 * seconds; the default, 30 s, suits production, where a rescue is not being watched for.
 * @module
 */
import { handleShutdownSignals } from '../../src/index.js';
import { readOptions } from './config.js';
import { printEvents } from './event-lines.js';
import { openRescreeningApp } from './wiring.js';

const serviceUrl = process.env.RESCREEN_SERVICE_URL;
if (!serviceUrl) throw new Error('Expected RESCREEN_SERVICE_URL to be set by the demo, got nothing');
const app = await openRescreeningApp(readOptions(process.env, []), serviceUrl);
printEvents(app.warden, (line) => console.log(line));
handleShutdownSignals({ stop: () => app.warden.stop(), close: () => app.close() });
await app.warden.start({ concurrency: 1, pollInterval: '200ms', lease: '3s', heartbeat: '1s', rescueInterval: '1s', grace: '10s' });
