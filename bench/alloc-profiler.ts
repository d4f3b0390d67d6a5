/**
 * Preloaded into a worker child by `npm run bench -- --alloc-prof DIR` (`node --import`): samples every allocation
 * the child makes, including objects the garbage collector has already freed, and writes the profile to
 * `$BENCH_ALLOC_PROF_DIR/$BENCH_ALLOC_PROF_NAME.heapprofile` when the child exits. `--heap-prof` cannot show this:
 * it keeps only what is still alive at the end, while the cost of a hot path is what it allocates and drops (the
 * young-generation collections it causes). Summarize with `npx tsx bench/profile-summary.ts DIR`.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_ALLOC_PROF_DIR;
const name = process.env.BENCH_ALLOC_PROF_NAME ?? `child-${process.pid}`;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  // One sample per 8 KB allocated on average: enough for a per-function breakdown of millions of allocations.
  session.post('HeapProfiler.startSampling', { samplingInterval: 8_192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  process.on('exit', () => {
    // An in-process inspector session answers synchronously, so the profile is written before the process ends.
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (!error) writeFileSync(join(dir, `${name}.heapprofile`), JSON.stringify(result.profile));
    });
  });
}
