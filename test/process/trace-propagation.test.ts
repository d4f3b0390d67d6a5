/**
 * "The consumer span links to the producer's context across processes" (issue #6). The test process enqueues
 * inside a span of its own, with its own SDK (in-memory exporter, W3C propagator); a worker in a child process,
 * with another SDK, runs the job and prints its spans. The child's consumer span must link to (and be a child of)
 * the producer span recorded here, through nothing but the context stored with the job.
 */
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncHooksContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob, type Warden } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { killAllChildren, spawnChild, waitForExit, waitForMessage } from './child-process.js';

const traced = defineJob({ name: 'traced', queue: 'traced', handler: () => {} });

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  context.setGlobalContextManager(new AsyncHooksContextManager().enable());
});
afterAll(() => {
  trace.disable();
  propagation.disable();
  context.disable();
});

describe.each(DRIVER_KINDS)('trace context across processes (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    exporter.reset();
  });
  afterEach(async () => {
    await killAllChildren();
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  it("links the child's consumer span to the producer span recorded in this process", async () => {
    warden = createWarden({ database: tdb.url, schema: tdb.schema, jobs: [traced], logger: pino({ level: 'silent' }), retention: false });
    const w = warden;
    const { id, job } = await trace.getTracer('test').startActiveSpan('incoming request', async (request) => {
      try {
        return await w.enqueue(traced, {});
      } finally {
        request.end();
      }
    });
    const request = exporter.getFinishedSpans().find((s) => s.name === 'incoming request')!;
    const producer = exporter.getFinishedSpans().find((s) => s.name === 'traced publish')!;
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(job.traceContext!.traceparent).toBe(`00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`);

    const child = spawnChild('trace-worker', 'trace-worker.ts', { url: tdb.url, schema: tdb.schema, name: 'worker' });
    await waitForMessage(child, (m) => m.type === 'done', 30_000);
    expect((await waitForExit(child, 10_000)).code).toBe(0);
    const spans = child.ofType('span');
    const consumer = spans.find((s) => s.name === 'traced process')!;
    expect(consumer, child.describe()).toBeDefined();
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(consumer.links).toEqual([{ traceId: producer.spanContext().traceId, spanId: producer.spanContext().spanId }]);
    expect(consumer.traceId).toBe(producer.spanContext().traceId);
    expect(consumer.parentSpanId).toBe(producer.spanContext().spanId);
    expect(consumer.attributes).toMatchObject({ 'messaging.system': 'warden', 'messaging.message.id': id, 'warden.job.outcome': 'completed' });
    const handlerSpan = spans.find((s) => s.name === 'child handler work')!;
    expect(handlerSpan.parentSpanId).toBe(consumer.spanId);
  });
});
