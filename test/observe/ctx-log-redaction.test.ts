/**
 * `ctx.log` of a job with `sensitive` fields redacts every way pino has of writing a value, not only the six
 * built-in level methods and `child`: bindings added later with `setBindings`, the application logger's custom
 * levels (`customLevels`, on the root or given to a child) with their messages and interpolation arguments, and a
 * child's `msgPrefix`. First on the wrapper itself, then through a real job on each driver.
 * @module
 */
import { Writable } from 'node:stream';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createRedactor, REDACTED } from '../../src/observe/redact.js';
import { redactingLogger } from '../../src/observe/redacting-logger.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const CARD = '4111111111111111';
const PAYLOAD = { card: { number: CARD, brand: 'visa' }, user: 'ann' };
const SENSITIVE = ['card.number'];

/** A pino logger writing JSON lines into `lines`. */
function capture(options: LoggerOptions<string> = {}): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  let out = '';
  const stream = new Writable({ write(chunk, _encoding, done) { out += String(chunk); done(); } });
  return {
    // Typed as a plain Logger, as Warden takes it: the custom levels are called through `at` below.
    logger: pino({ level: 'trace', ...options }, stream) as unknown as Logger,
    lines: () => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => out,
  };
}

/** The method of a custom level, as a handler whose logger has it would call it. */
function at(logger: Logger, level: string): (...args: unknown[]) => void {
  const method = (logger as unknown as Record<string, unknown>)[level];
  if (typeof method !== 'function') throw new Error(`Expected a "${level}" level method, got ${typeof method}`);
  return method as (...args: unknown[]) => void;
}

describe('redactingLogger', () => {
  const redactor = createRedactor(SENSITIVE, PAYLOAD)!;

  it('redacts bindings added with setBindings, on every later line and in children made afterwards', () => {
    const { logger, lines, text } = capture();
    const log = redactingLogger(logger, redactor);
    log.setBindings({ card: PAYLOAD.card, note: `card ${CARD}` });
    log.info('charging');
    log.child({ step: 'authorize' }).warn('authorizing');
    expect(text()).not.toContain(CARD);
    expect(lines()).toMatchObject([
      { msg: 'charging', card: { number: REDACTED, brand: 'visa' }, note: `card ${REDACTED}` },
      { msg: 'authorizing', step: 'authorize', card: { number: REDACTED, brand: 'visa' } },
    ]);
    // Reading the bindings back is fine: they are the redacted ones.
    expect(log.bindings()).toMatchObject({ card: { number: REDACTED } });
  });

  it('redacts the custom levels of the application logger: merging object, message and arguments', () => {
    const { logger, lines, text } = capture({ customLevels: { notice: 35 } });
    const log = redactingLogger(logger, redactor);
    at(log, 'notice')({ card: PAYLOAD.card }, `charging ${CARD}`);
    at(log, 'notice')('card %s of %s', CARD, 'ann');
    at(log, 'notice')(new Error(`card ${CARD} declined`));
    expect(text()).not.toContain(CARD);
    expect(lines()).toMatchObject([
      { level: 35, msg: `charging ${REDACTED}`, card: { number: REDACTED } },
      { level: 35, msg: `card ${REDACTED} of ann` },
      { level: 35, msg: `card ${REDACTED} declined`, err: { type: 'Error', message: `card ${REDACTED} declined` } },
    ]);
  });

  it('redacts the custom levels a child adds, and a child\'s message prefix', () => {
    const { logger, lines, text } = capture();
    const log = redactingLogger(logger, redactor);
    const child = log.child({}, { customLevels: { audit: 45 }, msgPrefix: `[${CARD}] ` }) as unknown as Logger;
    at(child, 'audit')({ card: PAYLOAD.card }, 'card %s', CARD);
    child.info('done');
    expect(text()).not.toContain(CARD);
    expect(lines()).toMatchObject([
      { level: 45, msg: `[${REDACTED}] card ${REDACTED}`, card: { number: REDACTED } },
      { level: 30, msg: `[${REDACTED}] done` },
    ]);
  });

  it('writes nothing, and redacts nothing, for a custom level that is off', () => {
    const { logger, text } = capture({ customLevels: { notice: 35 }, level: 'warn' });
    const log = redactingLogger(logger, redactor);
    let read = false;
    const value = { get card() { read = true; return PAYLOAD.card; } };
    at(log, 'notice')(value, 'charging');
    expect(text()).toBe('');
    expect(read, 'the merging object was not walked').toBe(false);
  });
});

describe.each(DRIVER_KINDS)('ctx.log of a job with sensitive fields (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => { tdb = await createTestDatabase(kind); });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  it('never writes a sensitive value through setBindings or a custom level', async () => {
    const { logger, lines, text } = capture({ customLevels: { notice: 35 }, level: 'info' });
    const job = defineJob<typeof PAYLOAD>({
      name: 'charge-card',
      sensitive: SENSITIVE,
      retry: { maxAttempts: 1 },
      handler: (payload, ctx) => {
        ctx.log.setBindings({ card: payload.card });
        ctx.log.info('charging');
        at(ctx.log, 'notice')({ card: payload.card }, `charging ${payload.card.number} for %s`, payload.user);
      },
    });
    warden = createWarden({ database: tdb.url, schema: tdb.schema, jobs: [job], logger, retention: false });
    const { id } = await warden.enqueue(job, PAYLOAD);
    await warden.drain();
    expect((await warden.jobs.get(id))?.state).toBe('completed');
    expect(text()).not.toContain(CARD);
    const handlerLines = lines().filter((l) => l.jobId === id && typeof l.msg === 'string' && l.msg.startsWith('charging'));
    expect(handlerLines).toMatchObject([
      { level: 30, msg: 'charging', card: { number: REDACTED, brand: 'visa' } },
      { level: 35, msg: `charging ${REDACTED} for ann`, card: { number: REDACTED, brand: 'visa' } },
    ]);
  });
});
