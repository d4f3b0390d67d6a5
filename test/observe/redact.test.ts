/**
 * Redaction units: `redact` (keys at any depth, dotted paths as suffixes, arrays, errors, cycles, never throwing),
 * secret values cut out of free text, the `Redactor` of a job, the redacting `ctx.log` wrapper, and the CLI's job
 * redaction. No database.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createJobRedaction } from '../../src/cli/cli-redaction.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import { collectSensitiveValues, createRedactor, redact, REDACTED, redactText } from '../../src/observe/redact.js';
import { redactingLogger } from '../../src/observe/redacting-logger.js';

const CARD = '4111111111111111';
const PASSWORD = 'hunter2-secret';

describe('redact', () => {
  it('replaces a plain name at any depth, in arrays too, and leaves the input untouched', () => {
    const input = { password: PASSWORD, user: { name: 'ann', password: PASSWORD }, list: [{ password: PASSWORD, ok: 1 }] };
    expect(redact(input, ['password'])).toEqual({ password: REDACTED, user: { name: 'ann', password: REDACTED }, list: [{ password: REDACTED, ok: 1 }] });
    expect(input.user.password).toBe(PASSWORD);
  });

  it('matches a dotted path as a suffix of the key path, with array indices transparent', () => {
    const input = { card: { number: CARD, expiry: '12/30' }, payment: { card: { number: CARD } }, cards: [{ number: CARD }], number: 7 };
    expect(redact(input, ['card.number', 'cards.number'])).toEqual({
      card: { number: REDACTED, expiry: '12/30' },
      payment: { card: { number: REDACTED } },
      cards: [{ number: REDACTED }],
      number: 7,
    });
  });

  it('redacts a whole object under a sensitive key, and keeps absent values absent', () => {
    expect(redact({ card: { number: CARD }, password: undefined }, ['card', 'password'])).toEqual({ card: REDACTED, password: undefined });
  });

  it('copies errors as type, message, stack and their own properties, redacted; cycles and depth are bounded', () => {
    const error = Object.assign(new Error('boom'), { password: PASSWORD, code: 'E1' });
    const copy = redact({ error }, ['password']) as { error: Record<string, unknown> };
    expect(copy.error).toMatchObject({ type: 'Error', message: 'boom', code: 'E1', password: REDACTED });
    expect(typeof copy.error.stack).toBe('string');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(redact(cyclic, ['x'])).toEqual({ a: 1, self: '[circular]' });
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 100; i++) deep = (deep.next = {}) as Record<string, unknown>;
    expect(JSON.stringify(redact(root, ['x']))).toContain('[too deep]');
  });

  it('never throws: a throwing getter reads as unreadable; Maps, Sets and Dates are copied', () => {
    const hostile = { get boom() { throw new Error('no'); }, when: new Date(0), map: new Map([['password', PASSWORD]]), set: new Set([1]) };
    expect(redact(hostile, ['password'])).toEqual({ boom: '[unreadable]', when: '1970-01-01T00:00:00.000Z', map: { password: REDACTED }, set: [1] });
  });

  it('returns the value itself when nothing is sensitive', () => {
    const value = { a: 1 };
    expect(redact(value, [])).toBe(value);
  });

  it('cuts secret values out of every string when given secrets', () => {
    expect(redact({ note: `paid with ${CARD}`, n: 1 }, [], { secrets: [CARD] })).toEqual({ note: `paid with ${REDACTED}`, n: 1 });
  });
});

describe('secret values in free text', () => {
  it('collects the values under sensitive keys (long enough to be worth cutting), longest first', () => {
    const payload = { card: { number: CARD, cvv: '123' }, password: PASSWORD, amount: 100, card2: { number: 42424242 } };
    expect(collectSensitiveValues(payload, ['card.number', 'password', 'cvv', 'card2'])).toEqual([CARD, PASSWORD, '42424242']);
  });

  it('replaces every occurrence', () => {
    expect(redactText(`${CARD} then ${CARD}`, [CARD])).toBe(`${REDACTED} then ${REDACTED}`);
    expect(redactText('nothing here', [CARD])).toBe('nothing here');
  });

  it('a job redactor redacts values, text and stored errors with its payload secrets', () => {
    const redactor = createRedactor(['card.number'], { card: { number: CARD } })!;
    expect(redactor.text(`declined ${CARD}`)).toBe(`declined ${REDACTED}`);
    expect(redactor.value({ card: { number: CARD }, copy: CARD })).toEqual({ card: { number: REDACTED }, copy: REDACTED });
    const info = redactor.errorInfo({ name: 'Error', message: `card ${CARD}`, stack: `Error: card ${CARD}\n at x`, issues: [{ message: `bad ${CARD}`, path: ['card'] }] });
    expect(JSON.stringify(info)).not.toContain(CARD);
    expect(createRedactor([], {})).toBeNull();
  });
});

describe('redacting logger', () => {
  function capture(): { logger: pino.Logger; lines: () => string } {
    let text = '';
    const stream = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
    return { logger: pino({ level: 'debug' }, stream), lines: () => text };
  }

  it('redacts merging objects, messages, interpolated values, errors and child bindings', () => {
    const { logger, lines } = capture();
    const redactor = createRedactor(['card.number', 'password'], { card: { number: CARD }, password: PASSWORD })!;
    const log = redactingLogger(logger.child({ jobId: '1' }), redactor);
    log.info({ card: { number: CARD, brand: 'visa' } }, 'charging');
    log.info('charging %s with %s', CARD, PASSWORD);
    log.info(`template ${CARD}`);
    log.warn({ payload: { password: PASSWORD } });
    log.error(new Error(`declined ${CARD}`));
    log.error({ err: new Error(`declined ${PASSWORD}`) }, 'failed');
    log.child({ password: PASSWORD }).info('from a child');
    log.debug('charging %d', Number(CARD));
    const out = lines();
    expect(out).not.toContain(CARD);
    expect(out).not.toContain(PASSWORD);
    const parsed = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(parsed[0]).toMatchObject({ jobId: '1', card: { number: REDACTED, brand: 'visa' }, msg: 'charging' });
    expect(parsed[4]).toMatchObject({ err: { type: 'Error', message: `declined ${REDACTED}` }, msg: `declined ${REDACTED}` });
    expect(parsed[6]).toMatchObject({ password: REDACTED, msg: 'from a child' });
    expect(parsed).toHaveLength(8);
  });

  it('does no work for a level that is off', () => {
    const { logger, lines } = capture();
    logger.level = 'info';
    let reads = 0;
    const redactor = createRedactor(['password'], {})!;
    const log = redactingLogger(logger, redactor);
    log.debug({ get password() { reads++; return PASSWORD; } }, 'hidden');
    expect(reads).toBe(0);
    expect(lines()).toBe('');
    expect(log.isLevelEnabled('info')).toBe(true);
  });
});

describe('CLI job redaction', () => {
  const job = defineJob({ name: 'charge', sensitive: ['card.number'], handler: () => {} });
  const row = {
    id: '1', name: 'charge', payload: { card: { number: CARD }, user: 'ann' }, checkpoint: { card: { number: CARD } },
    lastError: { name: 'Error', message: `declined ${CARD}` },
  } as unknown as JobRow;

  it("redacts a job's payload, checkpoint, errors and step results by its definition, plus extra fields for every job", () => {
    const redaction = createJobRedaction(new Map([['charge', job]]), ['user']);
    const shown = redaction.job(row);
    expect(shown.payload).toEqual({ card: { number: REDACTED }, user: REDACTED });
    expect(JSON.stringify([shown, redaction.attempts(row, [{ error: row.lastError } as any]), redaction.steps(row, [{ result: { card: { number: CARD } } } as any])])).not.toContain(CARD);
    expect(row.payload).toEqual({ card: { number: CARD }, user: 'ann' });
  });

  it('leaves a job alone when nothing is sensitive for it', () => {
    const redaction = createJobRedaction(new Map(), []);
    expect(redaction.job(row)).toBe(row);
  });
});
