/**
 * A stored error is redacted before it is cut to its length limits (message 2,000 characters, stack 8,000), not
 * after: cut first, a secret straddling the limit no longer matches and its first characters are kept, in
 * `last_error`, the attempt history, the "job attempt failed" log line, the events, the spans, the audit trail and
 * the dead-letter alert. On each driver, for a message, a stack and a thrown non-Error; then `toErrorInfo` alone for
 * the name and schema issues.
 * @module
 */
import { Writable } from 'node:stream';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenEventName } from '../../src/events/event-map.js';
import { defineJob } from '../../src/job/define-job.js';
import { createRedactor, REDACTED } from '../../src/observe/redact.js';
import { toErrorInfo } from '../../src/runtime/error-info.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const PASSWORD = 'Sup3rSecretPassw0rd!';
/** What a cut through the password would leave: its first 8 characters. */
const PREFIX = PASSWORD.slice(0, 8);
const MAX_MESSAGE = 2_000;
const MAX_STACK = 8_000;

/** Filler so that `PASSWORD` starts `PREFIX.length` characters before `limit - 3` (the cut keeps `limit - 3` and adds "..."). */
function padTo(limit: number, before: string): string {
  return 'x'.repeat(limit - 3 - PREFIX.length - before.length);
}

type Thrower = (password: string) => unknown;

const CASES: [string, Thrower, (info: { message: string; stack?: string }) => string][] = [
  // The message is cut at 2,000: the password straddles that cut.
  ['a message straddling the 2,000-character cut', (p) => new Error(`${padTo(MAX_MESSAGE, ' login with ')} login with ${p} refused`), (i) => i.message],
  // The stack starts with "Error: " and the message; the message itself is cut well before the password.
  ['a stack straddling the 8,000-character cut', (p) => new Error(`${padTo(MAX_STACK, 'Error:  login with ')} login with ${p} refused`), (i) => i.stack ?? ''],
  // A thrown string is stored as "A non-Error value was thrown: <string>", cut at 2,000.
  ['a thrown string straddling the 2,000-character cut', (p) => `${padTo(MAX_MESSAGE, 'A non-Error value was thrown:  login with ')} login with ${p} refused`, (i) => i.message],
];

const EVENTS: WardenEventName[] = ['job:failed', 'job:dead'];

describe.each(DRIVER_KINDS)('errors are redacted before they are cut (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => { tdb = await createTestDatabase(kind); });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  it.each(CASES)('%s', async (_what, thrower, cutText) => {
    let logs = '';
    const stream = new Writable({ write(chunk, _encoding, done) { logs += String(chunk); done(); } });
    const exporter = new InMemorySpanExporter();
    const job = defineJob<{ password: string }>({
      name: 'login',
      sensitive: ['password'],
      retry: { maxAttempts: 1 },
      handler: ({ password }) => {
        throw thrower(password);
      },
    });
    warden = createWarden({
      database: tdb.url,
      schema: tdb.schema,
      jobs: [job],
      logger: pino({ level: 'warn' }, stream),
      tracing: { tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) },
      audit: true,
      alerts: {},
      retention: false,
    });
    const events: unknown[] = [];
    for (const event of EVENTS) warden.on(event, (payload) => events.push(payload));
    const { id } = await warden.enqueue(job, { password: PASSWORD });
    await warden.drain();
    await warden.alerts.settled();
    await warden.audit.flush();

    const stored = await warden.jobs.get(id);
    expect(stored?.state).toBe('dead');
    const text = cutText(stored!.lastError!);
    // The cut happened where the password was: its redaction is what is left there.
    expect(text.endsWith('...'), 'the text was cut').toBe(true);
    expect(text.slice(-20), 'the end of the stored text').toContain('[reda');
    const audit: unknown[] = [];
    for await (const entry of warden.audit.entries()) audit.push(entry);
    const outputs: [string, unknown][] = [
      ['last_error', stored!.lastError],
      ['the attempt history', await warden.jobs.attempts(id)],
      ['the log lines', logs],
      ['the events', events],
      ['the spans', exporter.getFinishedSpans().map((s) => ({ attributes: s.attributes, events: s.events, status: s.status }))],
      ['the audit trail', audit],
      ['the dead-letter alert', await warden.alerts.list()],
    ];
    for (const [where, value] of outputs) {
      const shown = typeof value === 'string' ? value : JSON.stringify(value);
      expect(shown, `${where} holds the error`).toContain('x'.repeat(50));
      expect(shown, `${where} keeps the first characters of the password`).not.toContain(PREFIX);
    }
  });
});

describe('toErrorInfo with a redactor', () => {
  const redactor = createRedactor(['password'], { password: PASSWORD })!;

  it('redacts a schema issue message and the name before cutting them', () => {
    const error = Object.assign(new Error('invalid'), {
      name: `${'N'.repeat(200 - 3 - PREFIX.length)}${PASSWORD}Error`,
      issues: [{ message: `${padTo(MAX_MESSAGE, '')}${PASSWORD} is not allowed`, path: ['password'] }],
    });
    const info = toErrorInfo(error, redactor.text);
    expect(info.name).not.toContain(PREFIX);
    expect(info.issues![0]!.message).not.toContain(PREFIX);
    expect(info.issues![0]!.message).toMatch(/\[reda[a-z]*\.\.\.$/);
    expect(info.issues![0]!.path).toEqual(['password']);
  });

  it('leaves a text under the limit whole, with the secret replaced', () => {
    expect(toErrorInfo(new Error(`login with ${PASSWORD} refused`), redactor.text).message).toBe(`login with ${REDACTED} refused`);
  });
});
