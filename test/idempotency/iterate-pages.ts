/**
 * Page sources for the `ctx.iterate` tests of this folder.
 * @module
 */
import type { IterationPage } from '../../src/job/job-context-options.js';

/** Pages of the integers 1..n in threes: the page after `cursor` (the last item seen), `next: null` on the last. */
export function threes(n: number) {
  return (cursor: number | null): IterationPage<number, number> => {
    const start = (cursor ?? 0) + 1;
    const items = [start, start + 1, start + 2];
    return { items, next: start + 2 >= n ? null : start + 2 };
  };
}
