/**
 * "Values of fields marked sensitive never appear in logs, metrics, spans or CLI --json output" (issue #6; the
 * audit trail has its own test). A job whose payload holds a card number and a password logs them, records a
 * step with them and throws an error quoting them; then every output is searched for the secrets: the log
 * stream, the events, the stored errors, `/metrics`, the spans, and the CLI's `--json` and human output.
 */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenEventName } from '../../src/events/event-map.js';
import { REDACTED } from '../../src/observe/redact.js';
import { cli } from '../cli/cli-helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { CARD, chargeCard, PASSWORD } from './fixtures/sensitive-jobs.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/sensitive-jobs.ts', import.meta.url));
const PAYLOAD = { card: { number: CARD, brand: 'visa' }, password: PASSWORD, user: 'ann' };
const EVENTS: WardenEventName[] = ['job:enqueued', 'job:started', 'job:failed', 'job:dead', 'job:step', 'error'];

describe.each(DRIVER_KINDS)('sensitive fields (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    delete process.env.WARDEN_SENSITIVE;
    await tdb.cleanup();
  });

  const dbArgs = () => (tdb.schema ? ['--database', tdb.url, '--schema', tdb.schema] : ['--database', tdb.url]);

  function expectClean(what: string, text: string): void {
    expect(text.length, `${what} should not be empty`).toBeGreaterThan(0);
    expect(text, `${what} leaks the card number`).not.toContain(CARD);
    expect(text, `${what} leaks the password`).not.toContain(PASSWORD);
  }

  it('never appear in logs, events, stored errors, metrics, spans or CLI output', async () => {
    let logs = '';
    const stream = new Writable({ write(chunk, _encoding, done) { logs += String(chunk); done(); } });
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    warden = createWarden({
      database: tdb.url,
      schema: tdb.schema,
      jobs: [chargeCard],
      logger: pino({ level: 'debug' }, stream),
      metrics: true,
      tracing: { tracerProvider },
      retention: false,
    });
    const events: unknown[] = [];
    for (const event of EVENTS) warden.on(event, (payload) => events.push({ event, payload }));

    const { id } = await warden.enqueue(chargeCard, PAYLOAD);
    await warden.drain({ queues: ['payments'] });
    const stored = await warden.jobs.get(id);
    expect(stored!.state).toBe('dead');
    // The payload is stored as given (the handler needs it); everything shown about it is redacted.
    expect(stored!.payload).toEqual(PAYLOAD);

    expectClean('logs', logs);
    expect(logs).toContain(`charging card ${REDACTED}`);
    expectClean('events', JSON.stringify(events));
    expectClean('stored errors', JSON.stringify([stored!.lastError, await warden.jobs.attempts(id)]));
    expect(stored!.lastError!.message).toBe(`card ${REDACTED} declined for ann (password ${REDACTED})`);
    expectClean('metrics', await warden.metrics!.registry.metrics());
    const spans = exporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status, links: s.links }));
    expect(spans.map((s) => s.name).sort()).toEqual(['payments process', 'payments publish']);
    expectClean('spans', JSON.stringify(spans));

    const shownJson = await cli(['jobs', 'show', id, '--json', '--jobs', FIXTURE, ...dbArgs()]);
    expect(shownJson.code).toBe(0);
    expectClean('jobs show --json', shownJson.out);
    const shown = JSON.parse(shownJson.out) as { job: { payload: unknown }; steps: { result: unknown }[] };
    expect(shown.job.payload).toEqual({ card: { number: REDACTED, brand: 'visa' }, password: REDACTED, user: 'ann' });
    expect(shown.steps[0]!.result).toEqual({ card: { number: REDACTED, brand: 'visa' }, approved: false });
    for (const args of [['jobs', 'show', id], ['jobs', 'list'], ['jobs', 'list', '--json']]) {
      const result = await cli([...args, '--jobs', FIXTURE, ...dbArgs()]);
      expect(result.code, result.err).toBe(0);
      expectClean(args.join(' '), result.out);
    }
    // Without the jobs module the CLI does not know the fields: --redact or WARDEN_SENSITIVE name them.
    expectClean('jobs show --redact', (await cli(['jobs', 'show', id, '--json', '--redact', 'card.number,password', ...dbArgs()])).out);
    process.env.WARDEN_SENSITIVE = 'number,password';
    expectClean('jobs list with WARDEN_SENSITIVE', (await cli(['jobs', 'list', '--json', ...dbArgs()])).out);
    delete process.env.WARDEN_SENSITIVE;
    const enqueued = await cli(['enqueue', 'charge-card', JSON.stringify(PAYLOAD), '--jobs', FIXTURE, '--json', ...dbArgs()]);
    expect(enqueued.code, enqueued.err).toBe(0);
    expectClean('enqueue --json', enqueued.out);
  });
});
