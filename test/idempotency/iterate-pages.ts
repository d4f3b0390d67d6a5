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

/**
 * A keyset source over the integers 1..n: the page after `cursor` (the last item seen), `size` items, `next` = its
 * last item; an empty page with `next: null` at the end. Reports the total.
 */
export function numbers(n: number, size: number) {
  return (cursor: number | null): IterationPage<number, number> => {
    const start = (cursor ?? 0) + 1;
    const items: number[] = [];
    for (let i = start; i <= Math.min(n, start + size - 1); i++) items.push(i);
    return { items, next: items.length > 0 ? items[items.length - 1]! : null, total: n };
  };
}
