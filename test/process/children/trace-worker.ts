/**
 * A worker process with its own OpenTelemetry SDK: a global tracer provider whose exporter prints every finished
 * span as one JSON line (`{ type: 'span', … }`), the W3C trace-context propagator and an async-hooks context
 * manager, as an application would set them up. Runs job `traced` (whose handler makes a span of its own) until
 * one attempt completed, then flushes, stops and prints `done`.
 * @module
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncHooksContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { createWarden, defineJob } from '../../../src/index.js';
import { type BaseConfig, readConfig, reportCrashes, send } from './child-common.js';

reportCrashes();
const config = readConfig<BaseConfig>();

/** Prints spans as JSON lines: the in-memory exporter of this process, readable by the parent. */
const jsonLinesExporter: SpanExporter = {
  export(spans: ReadableSpan[], done) {
    for (const s of spans) {
      send({
        type: 'span',
        name: s.name,
        kind: s.kind,
        traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId,
        parentSpanId: s.parentSpanContext?.spanId ?? null,
        links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
        attributes: s.attributes,
        status: s.status,
      });
    }
    done({ code: ExportResultCode.SUCCESS });
  },
  shutdown: async () => {},
};
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(jsonLinesExporter)] });
trace.setGlobalTracerProvider(provider);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
context.setGlobalContextManager(new AsyncHooksContextManager().enable());

const traced = defineJob({
  name: 'traced',
  queue: 'traced',
  handler: async () => {
    await trace.getTracer('child-app').startActiveSpan('child handler work', async (span) => span.end());
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [traced], logger: pino({ level: 'silent' }), retention: false });
const completed = warden.events.next('job:completed');
await warden.start({ pollInterval: '100ms' });
send({ type: 'ready', name: config.name, pid: process.pid });
await completed;
await warden.close();
await provider.forceFlush();
send({ type: 'done' });
