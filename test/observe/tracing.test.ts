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
