/**
 * Counts per name over a sliding time window, in buckets of 1/30 of the window: memory stays bounded however many
 * events arrive, at the cost of the window's edge being one bucket coarse.
 * @module
 */

interface Bucket {
  start: number;
  total: number;
  failed: number;
}

const BUCKETS_PER_WINDOW = 30;

/** Totals and failures per name within the last `windowMs`. Times are ms from the injected clock. */
export class WindowCounts {
  readonly #windowMs: number;
  readonly #bucketMs: number;
  readonly #byName = new Map<string, Bucket[]>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
    this.#bucketMs = Math.max(1, Math.floor(windowMs / BUCKETS_PER_WINDOW));
  }

  /** Counts one event at `at`, as a failure or not. */
  add(name: string, at: number, failed: boolean): void {
    let buckets = this.#byName.get(name);
    if (!buckets) this.#byName.set(name, (buckets = []));
    const start = at - (at % this.#bucketMs);
    let last = buckets[buckets.length - 1];
    if (!last || last.start !== start) buckets.push((last = { start, total: 0, failed: 0 }));
    last.total++;
    if (failed) last.failed++;
  }

  /** Events (and failures among them) of `name` within the window ending at `now`. */
  totals(name: string, now: number): { total: number; failed: number } {
    let total = 0;
    let failed = 0;
    for (const b of this.#byName.get(name) ?? []) {
      if (b.start + this.#bucketMs <= now - this.#windowMs) continue;
      total += b.total;
      failed += b.failed;
    }
    return { total, failed };
  }

  /** Drops buckets that left the window, and names left with none. */
  prune(now: number): void {
    for (const [name, buckets] of this.#byName) {
      const kept = buckets.filter((b) => b.start + this.#bucketMs > now - this.#windowMs);
      if (kept.length === 0) this.#byName.delete(name);
      else this.#byName.set(name, kept);
    }
  }
}
