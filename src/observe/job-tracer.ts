/**
 * OpenTelemetry traces through `@opentelemetry/api` only: Warden creates spans, the application's SDK (if any)
 * records and exports them. With no tracer provider registered the API hands out a no-op, and Warden does no span
 * work at all (one function call per enqueue and per attempt decides that).
 *
 * - Producer span `<queue> publish` (kind PRODUCER) around each enqueue's insert. Its context is injected as W3C
 *   `traceparent`/`tracestate` and stored with the job (`trace_context`).
 * - Consumer span `<queue> process` (kind CONSUMER) per attempt, with a span link to the stored producer context
 *   and, by default, that context as its parent too (one trace from enqueue to the last attempt). The handler
 *   runs inside it, so spans the handler makes (HTTP, database) nest under it. Jobs enqueued by schedules carry
 *   no producer context: their attempts start traces of their own (with `warden.schedule.name`).
 *
 * Spans never carry payloads; error messages on them are the stored, redacted `ErrorInfo`.
 * @module
 */
import {
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { JobInsert } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import type { AttemptOutcome, ErrorInfo, JobRow } from '../job/job-record.js';

/** The instrumentation scope name spans are created under. */
export const TRACER_NAME = 'warden';

/** Options of {@link JobTracer} (`createWarden({ tracing })`). */
export interface TracingOptions {
  /**
   * The provider to create spans with instead of the global one (e.g. a provider of a test, or one not
   * registered globally). @default the global provider (`trace.getTracerProvider()`): spans only once an SDK
   * registered one
   */
  tracerProvider?: TracerProvider;
  /**
   * What each attempt's consumer span is a child of. `"producer"`: the enqueue's span (one trace from enqueue to
   * the last attempt; retries days later stay in the same trace). `"none"`: a new trace per attempt. The consumer
   * span links to the producer's context either way. @default "producer"
   */
  consumerParent?: 'producer' | 'none';
}

/** The provider a fresh, unregistered global proxy delegates to: the API's no-op. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** A W3C `traceparent`: version 00, trace id, span id, flags. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** One attempt's consumer span, ended exactly once. */
export interface ProcessSpan {
  readonly span: Span;
  /** The context the handler runs in (the consumer span active). */
  readonly context: Context;
  ended: boolean;
}

/** Creates Warden's producer and consumer spans; see the module comment. */
export class JobTracer {
  readonly #explicit: TracerProvider | null;
  readonly #parent: 'producer' | 'none';
  #tracer: { provider: TracerProvider; tracer: Tracer } | null = null;

  /** @throws InvalidOptionError for a bad option. */
  constructor(options: TracingOptions = {}) {
    const provider = options.tracerProvider;
    if (provider !== undefined && typeof provider?.getTracer !== 'function') throw new InvalidOptionError('tracing.tracerProvider', provider, 'an OpenTelemetry TracerProvider');
    const parent = options.consumerParent ?? 'producer';
    if (parent !== 'producer' && parent !== 'none') throw new InvalidOptionError('tracing.consumerParent', parent, '"producer" or "none"');
    this.#explicit = provider ?? null;
    this.#parent = parent;
  }

  /**
   * The tracer to use now, or null when the global provider is still the API's no-op. Checked on every call,
   * because an SDK may register its provider after Warden was created.
   */
  #active(): Tracer | null {
    let provider = this.#explicit;
    if (!provider) {
      const global = trace.getTracerProvider();
      if (global instanceof ProxyTracerProvider && global.getDelegate() === NOOP_PROVIDER) return null;
      provider = global;
    }
    if (this.#tracer?.provider !== provider) this.#tracer = { provider, tracer: provider.getTracer(TRACER_NAME) };
    return this.#tracer.tracer;
  }

  /**
   * Runs `insert` (the driver call writing `inserts`) inside one producer span per job, after storing each span's
   * context in its insert. Without an active tracer it just runs `insert`.
   */
  publish<R extends { job: JobRow; duplicate: boolean }>(inserts: JobInsert[], insert: () => Promise<R[]>): Promise<R[]> {
    const tracer = this.#active();
    // Not async, so the no-tracer path adds no promise of its own to every enqueue.
    return tracer ? this.#publish(tracer, inserts, insert) : insert();
  }

  async #publish<R extends { job: JobRow; duplicate: boolean }>(tracer: Tracer, inserts: JobInsert[], insert: () => Promise<R[]>): Promise<R[]> {
    const parent = context.active();
    const spans = inserts.map((job) => {
      const span = tracer.startSpan(`${job.queue} publish`, {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'warden',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.destination.name': job.queue,
          'warden.job.name': job.name,
          ...(job.scheduleName ? { 'warden.schedule.name': job.scheduleName } : {}),
        },
      }, parent);
      job.traceContext = injectContext(trace.setSpan(parent, span));
      return span;
    });
    try {
      const results = await insert();
      for (const [index, span] of spans.entries()) {
        const result = results[index];
        if (result) span.setAttributes({ 'messaging.message.id': result.job.id, 'warden.job.duplicate': result.duplicate });
        span.end();
      }
      return results;
    } catch (error) {
      for (const span of spans) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? `${error.name}: ${error.message}` : 'enqueue failed' });
        span.end();
      }
      throw error;
    }
  }

  /** Starts an attempt's consumer span, or returns null without an active tracer. */
  startProcess(row: JobRow, workerId: string): ProcessSpan | null {
    const tracer = this.#active();
    if (!tracer) return null;
    const producer = extractSpanContext(row.traceContext);
    const parent = producer && this.#parent === 'producer' ? trace.setSpanContext(ROOT_CONTEXT, producer) : ROOT_CONTEXT;
    const span = tracer.startSpan(`${row.queue} process`, {
      kind: SpanKind.CONSUMER,
      links: producer ? [{ context: producer, attributes: { 'warden.link': 'producer' } }] : [],
      attributes: {
        'messaging.system': 'warden',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': row.queue,
        'messaging.message.id': row.id,
        'warden.job.name': row.name,
        'warden.job.attempt': row.attempt,
        'warden.job.max_attempts': row.maxAttempts,
        'warden.worker.id': workerId,
        ...(row.scheduleName ? { 'warden.schedule.name': row.scheduleName } : {}),
      },
    }, parent);
    return { span, context: trace.setSpan(parent, span), ended: false };
  }

  /** Runs `fn` with the consumer span active (or just runs it). */
  runInSpan<T>(handle: ProcessSpan | null, fn: () => T): T {
    return handle ? context.with(handle.context, fn) : fn();
  }

  /**
   * Ends an attempt's span with its outcome: status OK for `completed`, ERROR with the (redacted) error and
   * `error.type` (the error's name, else the outcome) for failures, unset otherwise (`yielded`, `stale`: an ending
   * refused for a lost lease or given up on, so nothing was recorded). Ending twice does nothing.
   */
  endProcess(handle: ProcessSpan | null, outcome: AttemptOutcome | 'stale', error: ErrorInfo | null, nextState: string | null): void {
    if (!handle || handle.ended) return;
    handle.ended = true;
    const { span } = handle;
    span.setAttribute('warden.job.outcome', outcome);
    if (nextState) span.setAttribute('warden.job.next_state', nextState);
    if (outcome === 'completed') span.setStatus({ code: SpanStatusCode.OK });
    else if (outcome !== 'yielded' && outcome !== 'stale') {
      if (error) span.recordException({ name: error.name, message: error.message, stack: error.stack });
      // Required by the semantic conventions on a failed operation: the class of error, low-cardinality.
      span.setAttribute('error.type', error?.name || outcome);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error ? `${error.name}: ${error.message}` : outcome });
    }
    span.end();
  }
}

/** The W3C headers of `ctx`: through the registered propagator, else written directly from its span context. */
function injectContext(ctx: Context): Record<string, string> | null {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  if (carrier.traceparent === undefined) {
    // No propagator registered (an SDK set up without one): the span context is still worth keeping.
    const sc = trace.getSpanContext(ctx);
    if (!sc || !isSpanContextValid(sc)) return null;
    carrier.traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    const state = sc.traceState?.serialize();
    if (state) carrier.tracestate = state;
  }
  return Object.keys(carrier).length > 0 ? carrier : null;
}

/** The remote span context stored with a job, or null when none (or an unreadable one) was stored. */
export function extractSpanContext(carrier: Record<string, string> | null | undefined): SpanContext | null {
  if (!carrier || typeof carrier !== 'object') return null;
  const fromPropagator = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, carrier));
  if (fromPropagator && isSpanContextValid(fromPropagator)) return fromPropagator;
  const match = TRACEPARENT.exec(String(carrier.traceparent ?? '').trim().toLowerCase());
  if (!match) return null;
  const sc: SpanContext = { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true };
  if (typeof carrier.tracestate === 'string' && carrier.tracestate !== '') sc.traceState = createTraceState(carrier.tracestate);
  return isSpanContextValid(sc) ? sc : null;
}
