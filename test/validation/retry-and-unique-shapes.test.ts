/**
 * `retry`, `retry.backoff` and `unique` must be objects when given. Anything else used to become the default policy
 * without a word (`retry: 3` became 10 attempts, `backoff: "fixed"` exponential 1s…1h) or a TypeError (`unique:
 * null`). The same retry check serves `alerts.delivery.retry`.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { resolveAlertOptions } from '../../src/alerts/alert-options.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { resolveRetryPolicy } from '../../src/job/retry-policy.js';

const handler = (): void => undefined;

describe('retry and backoff must be objects', () => {
  it.each([3, 'fixed', null, [], true])('defineJob refuses retry: %p', (retry) => {
    expect(() => defineJob({ name: 'a', handler, retry: retry as never })).toThrow(InvalidOptionError);
    expect(() => defineJob({ name: 'a', handler, retry: retry as never })).toThrow(/^Expected retry of job "a" to be an object \{ maxAttempts\?, backoff\? \}/);
  });

  it.each(['fixed', 1000, null, []])('defineJob refuses retry.backoff: %p', (backoff) => {
    expect(() => defineJob({ name: 'a', handler, retry: { backoff: backoff as never } })).toThrow(/^Expected retry of job "a"\.backoff to be an object/);
  });

  it('accepts the documented forms', () => {
    expect(defineJob({ name: 'a', handler }).retry).toMatchObject({ maxAttempts: 10, type: 'exponential' });
    expect(defineJob({ name: 'a', handler, retry: {} }).retry).toMatchObject({ maxAttempts: 10 });
    expect(defineJob({ name: 'a', handler, retry: { maxAttempts: 3, backoff: { type: 'fixed', base: '5s' } } }).retry).toMatchObject({ maxAttempts: 3, type: 'fixed', baseMs: 5000 });
    expect(resolveRetryPolicy('retry', undefined)).toMatchObject({ maxAttempts: 10 });
  });

  it('alerts.delivery.retry goes through the same check', () => {
    expect(() => resolveAlertOptions({ delivery: { retry: 5 as never } })).toThrow(/^Expected alerts\.delivery\.retry to be an object/);
    expect(() => resolveAlertOptions({ delivery: { retry: { backoff: 'fixed' as never } } })).toThrow(/^Expected alerts\.delivery\.retry\.backoff to be an object/);
  });
});

describe('unique must be an object', () => {
  it.each([null, 'by-id', 42, []])('defineJob refuses unique: %p with InvalidOptionError, not a TypeError', (unique) => {
    expect(() => defineJob({ name: 'a', handler, unique: unique as never })).toThrow(InvalidOptionError);
    expect(() => defineJob({ name: 'a', handler, unique: unique as never })).toThrow(/^Expected unique of job "a" to be an object/);
  });
});
