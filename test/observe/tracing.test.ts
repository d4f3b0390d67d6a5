/**
 * Traces in one process: the producer span of an enqueue and the context it stores with the job, the consumer span
 * of each attempt (link and parent, attributes, status), handler spans nested under it, and no span work at all
 * without a tracer provider. Across processes: test/process/trace-propagation.test.ts.
 */
import { context, ProxyTracerProvider, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncHooksContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden, type WardenOptions } from '../../src/index.js';
import { defineJob } from '../../src/job/define-job.js';
import { JobTracer } from '../../src/observe/job-tracer.js';
import { deferred, record, T0, TestClock, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const ok = defineJob({
  name: 'ok-job',
  queue: 'work',
  handler: async () => {
    // A span the handler makes nests under the attempt's consumer span.
    trace.getTracer('app').startActiveSpan('handler work', (span) => span.end());
  },
});
// Retried at once: `drain` runs only what is due when it claims, and a claim may run within a millisecond of the
// ending (on SQLite even in the same transaction), so a 1 ms backoff made the second attempt depend on timing.
const failing = defineJob({ name: 'failing-job', queue: 'work', sensitive: ['token'], retry: { maxAttempts: 2, backoff: { base: 0, jitter: 'none' } }, handler: (p: { token: string }) => {
  throw new Error(`rejected ${p.token}`);
} });

/** A handler that behaves as documented: it stops (rejects) as soon as ctx.signal aborts, and not before. */
const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));

const contextManager = new AsyncHooksContextManager();
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
  trace.disable();
});

describe.each(DRIVER_KINDS)('tracing (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  let exporter: InMemorySpanExporter;
  let provider: BasicTracerProvider;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    exporter = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    trace.disable();
    await tdb.cleanup();
  });

  function make(options: Partial<WardenOptions> = {}): Warden {
    warden = createWarden({ database: tdb.url, schema: tdb.schema, jobs: [ok, failing], logger: pino({ level: 'silent' }), retention: false, tracing: { tracerProvider: provider }, ...options });
    return warden;
  }
  const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

  it('records a producer span per enqueue and stores its context with the job', async () => {
    const w = make();
    const { id, job } = await w.enqueue(ok, {});
    const [producer] = spans('work publish');
    expect(producer!.kind).toBe(SpanKind.PRODUCER);
    expect(producer!.attributes).toEqual({
      'messaging.system': 'warden',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.destination.name': 'work',
      'messaging.message.id': id,
      'warden.job.name': 'ok-job',
      'warden.job.duplicate': false,
    });
    const { traceId, spanId } = producer!.spanContext();
    expect(job.traceContext).toEqual({ traceparent: `00-${traceId}-${spanId}-01` });
    const many = await w.enqueueMany([{ job: ok, payload: { a: 1 } }, { job: ok, payload: { a: 2 } }]);
    expect(spans('work publish')).toHaveLength(3);
    expect(new Set(many.map((r) => r.job.traceContext!.traceparent)).size).toBe(2);
    const dup = await w.enqueue(ok, {}, { key: 'k' });
    await w.enqueue(ok, {}, { key: 'k' });
    expect(spans('work publish').at(-1)!.attributes).toMatchObject({ 'messaging.message.id': dup.id, 'warden.job.duplicate': true });
  });

  it('records a consumer span per attempt, child of and linked to the producer, with the handler inside it', async () => {
    const w = make();
    const { id } = await w.enqueue(ok, {});
    await w.drain({ queues: ['work'] });
    const [producer] = spans('work publish');
    const [consumer] = spans('work process');
    expect(consumer!.kind).toBe(SpanKind.CONSUMER);
    expect(consumer!.links.map((l) => l.context.spanId)).toEqual([producer!.spanContext().spanId]);
    expect(consumer!.parentSpanContext?.spanId).toBe(producer!.spanContext().spanId);
    expect(consumer!.spanContext().traceId).toBe(producer!.spanContext().traceId);
    expect(consumer!.status.code).toBe(SpanStatusCode.OK);
    expect(consumer!.attributes).toMatchObject({
      'messaging.system': 'warden',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'work',
      'messaging.message.id': id,
      'warden.job.name': 'ok-job',
      'warden.job.attempt': 1,
      'warden.job.outcome': 'completed',
      'warden.job.next_state': 'completed',
    });
    // The handler's span is recorded by the global provider (registered here), under the consumer span.
    trace.setGlobalTracerProvider(provider);
    await w.enqueue(ok, {});
    await w.drain({ queues: ['work'] });
    const handlerSpan = spans('handler work')[0]!;
    const second = spans('work process')[1]!;
    expect(handlerSpan.parentSpanContext?.spanId).toBe(second.spanContext().spanId);
  });

  it('marks failed attempts as errors with the redacted error, one span per attempt', async () => {
    const w = make();
    await w.enqueue(failing, { token: 'tok-123456' });
    await w.drain({ queues: ['work'] });
    const consumers = spans('work process');
    expect(consumers.map((s) => [s.attributes['warden.job.attempt'], s.attributes['warden.job.outcome'], s.attributes['warden.job.next_state'], s.status.code])).toEqual([
      [1, 'failed', 'retrying', SpanStatusCode.ERROR],
      [2, 'failed', 'dead', SpanStatusCode.ERROR],
    ]);
    expect(consumers[0]!.status.message).toBe('Error: rejected [redacted]');
    expect(consumers[0]!.events.map((e) => e.name)).toEqual(['exception']);
    expect(JSON.stringify(consumers.map((s) => [s.events, s.status]))).not.toContain('tok-123456');
    const producer = spans('work publish')[0]!;
    for (const s of consumers) expect(s.links[0]!.context.spanId).toBe(producer.spanContext().spanId);
  });

  it('sets error.type on a failed attempt: the name of its error', async () => {
    const typeError = defineJob({ name: 'type-error-job', queue: 'work', retry: { maxAttempts: 1 }, handler: () => {
      throw new TypeError('nope');
    } });
    const w = make({ jobs: [typeError] });
    await w.enqueue(typeError, {});
    await w.drain({ queues: ['work'] });
    const [consumer] = spans('work process');
    expect(consumer!.status.code).toBe(SpanStatusCode.ERROR);
    expect(consumer!.attributes['error.type']).toBe('TypeError');
    expect(spans('work publish')[0]!.attributes).not.toHaveProperty('error.type');
  });

  it('ends the span of an attempt timed out, its handler honouring ctx.signal, with outcome "timeout" and status ERROR', async () => {
    const clock = new TestClock(T0);
    const slow = defineJob({ name: 'slow-job', queue: 'work', timeout: '1s', retry: { maxAttempts: 1 }, handler: (_p, ctx) => untilAborted(ctx.signal) });
    const w = make({ jobs: [slow], clock });
    const failed = record(w, 'job:failed');
    await w.enqueue(slow, {});
    // The timeout's timer is set in the same turn as job:started.
    const started = w.events.next('job:started');
    const draining = w.drain({ queues: ['work'] });
    await within(started, 'the attempt to start');
    await clock.advance(1_000);
    await within(draining, 'the drain to return');
    // The attempt row and the event say timeout: so must the span, although the handler's rejection came first.
    expect(failed.map((f) => f.outcome)).toEqual(['timeout']);
    const [consumer] = spans('work process');
    expect(consumer!.attributes).toMatchObject({ 'warden.job.outcome': 'timeout', 'warden.job.next_state': 'dead', 'error.type': 'JobTimeoutError' });
    expect(consumer!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('ends the span of an attempt aborted at the end of the shutdown grace with outcome "aborted" and status ERROR', async () => {
    const started = deferred();
    const slow = defineJob({ name: 'slow-job', queue: 'work', handler: (_p, ctx) => {
      started.resolve();
      return untilAborted(ctx.signal);
    } });
    // No grace: the handler ends only when aborted, so shutdown aborts it whatever the timing.
    const w = make({ jobs: [slow], worker: { queues: ['work'], grace: 0 } });
    const failed = record(w, 'job:failed');
    await w.start();
    await w.enqueue(slow, {});
    await within(started.promise, 'the job to start');
    await w.stop();
    expect(failed.map((f) => f.outcome)).toEqual(['aborted']);
    const [consumer] = spans('work process');
    expect(consumer!.attributes).toMatchObject({ 'warden.job.outcome': 'aborted', 'error.type': 'ShutdownAbortError' });
    expect(consumer!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('ends the span of an attempt whose ending was given up on as "stale", not completed/OK', async () => {
    // The database refuses every ending for good (a non-transient error on both drivers: SQLSTATE check_violation).
    const refused = () => Object.assign(new Error('ending refused for good'), { code: '23514' });
    const driver = overrideDriver(tdb.newDriver(), { jobFinishMany: () => async () => {
      throw refused();
    } });
    const w = make({ database: driver });
    const completed = record(w, 'job:completed');
    const errors = record(w, 'error');
    await w.enqueue(ok, {});
    await w.drain({ queues: ['work'] });
    // Nothing was recorded: no event, the job still running under its lease, to be rescued as lost and run again.
    expect(completed).toEqual([]);
    expect(errors.map((e) => e.context)).toContain(`finishing job ${(await tdb.driver.jobList({ limit: 1 }))[0]!.id}`);
    expect((await tdb.driver.jobList({ limit: 1 }))[0]!.state).toBe('running');
    const [consumer] = spans('work process');
    expect(consumer!.attributes['warden.job.outcome']).toBe('stale');
    expect(consumer!.attributes).not.toHaveProperty('warden.job.next_state');
    expect(consumer!.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('starts a new trace per attempt, still linked, with consumerParent "none"', async () => {
    const w = make({ tracing: { tracerProvider: provider, consumerParent: 'none' } });
    await w.enqueue(ok, {});
    await w.drain({ queues: ['work'] });
    const producer = spans('work publish')[0]!;
    const consumer = spans('work process')[0]!;
    expect(consumer.parentSpanContext).toBeUndefined();
    expect(consumer.spanContext().traceId).not.toBe(producer.spanContext().traceId);
    expect(consumer.links[0]!.context.traceId).toBe(producer.spanContext().traceId);
  });

  it('does no span work and stores no context without a tracer provider, or with tracing off', async () => {
    expect(trace.getTracerProvider()).toBeInstanceOf(ProxyTracerProvider);
    for (const options of [{ tracing: {} }, { tracing: false as const }]) {
      const w = make(options);
      const { job } = await w.enqueue(ok, {});
      expect(job.traceContext).toBeNull();
      await w.drain({ queues: ['work'] });
      await w.close();
    }
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('JobTracer', () => {
  it('rejects bad options', () => {
    expect(() => new JobTracer({ tracerProvider: {} as never })).toThrow(/tracing.tracerProvider/);
    expect(() => new JobTracer({ consumerParent: 'sometimes' as never })).toThrow(/tracing.consumerParent/);
  });
});
