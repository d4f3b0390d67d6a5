/**
 * Shared helpers for the observability tests: reading a registry's samples, checking text output with the real
 * `promtool`, and reading the database's own view (every job, every attempt) to compare the metrics against.
 *
 * Nothing here replaces a database or a Warden component.
 * @module
 */
import { spawnSync } from 'node:child_process';
import type { Registry } from 'prom-client';
import type { Driver } from '../../src/driver/driver.js';
import type { AttemptRow, JobRow } from '../../src/job/job-record.js';

/** One sample of a scrape: histogram series come as their `_bucket`, `_sum` and `_count` names. */
export interface Sample {
  name: string;
  labels: Record<string, string | number>;
  value: number;
}

/** Scrapes `registry` (running every collect, so database gauges are read) into samples. */
export async function scrape(registry: Registry): Promise<Sample[]> {
  const metrics = await registry.getMetricsAsJSON();
  return metrics.flatMap((m) => m.values.map((v) => ({ name: (v as { metricName?: string }).metricName ?? m.name, labels: v.labels as Sample['labels'], value: v.value })));
}

/** The sum of the samples named `name` whose labels include `where`; 0 when there are none. */
export function total(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return matching(samples, name, where).reduce((sum, s) => sum + s.value, 0);
}

/** The samples named `name` whose labels include `where`. */
export function matching(samples: Sample[], name: string, where: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => String(s.labels[k]) === v));
}

/** The result of `promtool check metrics` on `text`. */
export interface PromtoolResult {
  status: number | null;
  output: string;
}

/**
 * Runs the real `promtool check metrics` (Debian's `prometheus` package; `.ci/run` installs it) on `text`.
 * @throws when promtool is not installed, saying how to install it.
 */
export function promtoolCheck(text: string): PromtoolResult {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (result.error) {
    throw new Error(`Expected promtool on PATH (apt-get install -y prometheus), got ${result.error.message}`);
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/** Every job in the database, read through the driver's listing (paged, all states). */
export async function allJobs(driver: Driver): Promise<JobRow[]> {
  const jobs: JobRow[] = [];
  let beforeId: string | undefined;
  for (;;) {
    const page = await driver.jobList({ limit: 500, beforeId });
    jobs.push(...page);
    if (page.length < 500) return jobs;
    beforeId = page[page.length - 1]!.id;
  }
}

/** Every finished attempt of every job in `jobs`. */
export async function allAttempts(driver: Driver, jobs: JobRow[]): Promise<AttemptRow[]> {
  const lists = await Promise.all(jobs.map((j) => driver.jobAttemptList({ id: j.id })));
  return lists.flat();
}

/** Counts of `items` by `key`. */
export function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}
