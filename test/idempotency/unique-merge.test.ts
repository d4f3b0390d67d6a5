/**
 * How an enqueue-level `unique` merges with the job definition's: fields it leaves out come from the definition,
 * then the defaults; states the definition named survive an enqueue that sets only a window or replace, while
 * states the definition left to its defaults are derived again from the merged window and replace.
 */
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/job/define-job.js';
import { resolveEnqueueUnique } from '../../src/job/unique-options.js';

const HOUR = 3_600_000;

function merged(jobUnique: Parameters<typeof defineJob>[0]['unique'], unique: Record<string, unknown>) {
  const job = defineJob({ name: 'merge', unique: jobUnique, handler: () => undefined });
  return resolveEnqueueUnique(job.unique, { unique: { key: 'k', ...unique } }, {})?.unique;
}

describe('enqueue-level unique merged with the definition', () => {
  it('keeps the states a definition named when the enqueue sets only a window', () => {
    expect(merged({ states: ['queued'] }, { window: '1h' })).toEqual({ windowMs: HOUR, states: ['queued'], replace: false });
  });

  it('keeps the states a definition named when the enqueue sets only replace', () => {
    expect(merged({ states: ['queued', 'running'] }, { replace: true })).toEqual({ windowMs: null, states: ['queued', 'running'], replace: true });
  });

  it('derives default states again from the merged window and replace', () => {
    // The definition's states are its defaults (active only, no window): a window from the enqueue adds completed.
    expect(merged({ replace: false }, { window: '1h' })).toEqual({ windowMs: HOUR, states: ['queued', 'retrying', 'running', 'completed'], replace: false });
    // A definition that debounces keeps debouncing (replace from it), with replace's default states.
    expect(merged({ replace: true }, { window: '1h' })).toEqual({ windowMs: HOUR, states: ['queued', 'retrying'], replace: true });
  });

  it('takes window and replace from the definition when the enqueue leaves them out', () => {
    expect(merged({ window: '1h', replace: true }, {})).toEqual({ windowMs: HOUR, states: ['queued', 'retrying'], replace: true });
    expect(merged({ window: '1h' }, { states: ['dead'] })).toEqual({ windowMs: HOUR, states: ['dead'], replace: false });
  });

  it('uses the defaults when the definition has no unique', () => {
    expect(merged(undefined, {})).toEqual({ windowMs: null, states: ['queued', 'retrying', 'running'], replace: false });
    expect(merged(undefined, { window: '1h' })).toEqual({ windowMs: HOUR, states: ['queued', 'retrying', 'running', 'completed'], replace: false });
  });

  it('a bare key takes the definition policy whole', () => {
    const job = defineJob({ name: 'bare', unique: { window: '1h', states: ['completed'] }, handler: () => undefined });
    expect(resolveEnqueueUnique(job.unique, { key: 'k' }, {})).toEqual({ key: 'k', unique: { windowMs: HOUR, states: ['completed'], replace: false } });
  });
});
