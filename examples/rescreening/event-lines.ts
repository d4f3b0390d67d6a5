/**
 * One readable line per interesting Warden event of the re-screening job, printed by whichever process runs
 * the worker (the demo itself, or its worker child in the crash demo).
 * @module
 */
import type { Warden } from '../../src/index.js';

/** Subscribes `say` to the events worth seeing; returns an unsubscribe function. */
export function printEvents(warden: Warden, say: (line: string) => void): () => void {
  const offs = [
    warden.on('worker:started', (e) => say(`worker ${e.workerId} started (queues ${e.queues.join(', ')})`)),
    warden.on('schedule:fired', (e) => say(`schedule ${e.schedule}: ${e.actor ? `triggered by ${e.actor}` : 'tick'} at ${e.tickAt.toISOString()} -> job #${e.jobId}`)),
    // activeJobId is null when the skip came from the overlap check (only a key collision names the job).
    warden.on('schedule:skipped', (e) => say(`schedule ${e.schedule}: tick ${e.tickAt.toISOString()} skipped: ${e.activeJobId ? `run #${e.activeJobId}` : 'the previous run'} is still active (overlap "skip")`)),
    warden.on('job:started', (e) => say(`run #${e.job.id} attempt ${e.attempt} started (lease token ${e.leaseToken})`)),
    warden.on('job:step', (e) => {
      if (e.replayed) say(`run #${e.job.id} step "${e.step}" replayed from its record (not run again)`);
    }),
    warden.on('job:checkpointed', (e) => say(`run #${e.job.id} checkpoint: ${e.done}/${e.total ?? '?'} customers committed`)),
    warden.on('job:failed', (e) => say(`run #${e.job.id} attempt ${e.attempt} ${e.outcome}: ${e.error.name}: ${e.error.message.slice(0, 140)}`)),
    warden.on('job:retry-scheduled', (e) => say(`run #${e.job.id} retry in ${e.delayMs} ms`)),
    warden.on('job:rescued', (e) => say(`run #${e.job.id} rescued after its lease expired -> ${e.nextState}`)),
    warden.on('job:yielded', (e) => say(`run #${e.job.id} handed over to a fresh attempt (${e.reason}) at ${e.done}`)),
    warden.on('job:stale-write-rejected', (e) => say(`run #${e.jobId}: stale ${e.write} with lease token ${e.leaseToken} rejected`)),
    warden.on('job:completed', (e) => say(`run #${e.job.id} completed on attempt ${e.attempt} (${e.durationMs} ms)`)),
    warden.on('job:dead', (e) => say(`run #${e.job.id} DEAD after attempt ${e.attempt} (${e.reason})`)),
    warden.on('error', (e) => say(`ERROR ${e.context}: ${e.error instanceof Error ? e.error.message : String(e.error)}`)),
  ];
  return () => {
    for (const off of offs) off();
  };
}
