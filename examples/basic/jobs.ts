/**
 * The job definitions of the example app, as an application would write them: one `defineJob` per kind of
 * work, exported individually and as `jobs` (which is also what `warden worker --jobs <module>` looks for).
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { z } from 'zod';
import { defineJob, NonRetryableError } from '../../src/index.js';

/**
 * Where the jobs write and call; a real app would take these from its configuration. Handlers read it when
 * they run, so `main.ts` sets `partnerBaseUrl` once its stand-in partner server is listening.
 */
export const exampleConfig = {
  /** Directory standing in for an SMTP server: one `.eml` file per sent email. */
  outboxDir: 'example-outbox',
  /** Directory for generated reports (JSON). */
  reportsDir: 'reports',
  /** Base URL of the partner API. */
  partnerBaseUrl: 'http://127.0.0.1:8787',
  /** How long one HTTP request to the partner may take before it is abandoned. */
  partnerRequestTimeoutMs: 1_000,
};

const TEMPLATES = {
  welcome: { subject: 'Welcome to Example Co.', body: 'Hi!\n\nThanks for signing up. Your account is ready.\n' },
  receipt: { subject: 'Your receipt', body: 'Hi!\n\nWe received your payment. Thank you.\n' },
  reminder: { subject: 'A friendly reminder', body: 'Hi!\n\nYou still have items in your cart.\n' },
} as const;

/** A retryable failure of the partner API (5xx, timeout, connection refused). */
export class PartnerUnavailableError extends Error {
  override name = 'PartnerUnavailableError';
}

/**
 * Renders a template and "sends" it by writing the message into the outbox directory. The file is named by
 * job id, so a second run of the same job (at-least-once delivery) overwrites rather than duplicates.
 */
export const sendEmail = defineJob({
  name: 'send-email',
  queue: 'email',
  schema: z.object({
    to: z.email(),
    template: z.enum(['welcome', 'receipt', 'reminder']),
  }),
  retry: { maxAttempts: 5, backoff: { base: '500ms', max: '30s' } },
  timeout: '10s',
  handler: async ({ to, template }, ctx) => {
    const { subject, body } = TEMPLATES[template];
    const message = [
      `From: Example Co. <noreply@example.com>`,
      `To: ${to}`,
      `Subject: ${subject}`,
      `Message-ID: <job-${ctx.job.id}@example.com>`,
      `Date: ${new Date().toUTCString()}`,
      '',
      body,
    ].join('\r\n');
    await mkdir(exampleConfig.outboxDir, { recursive: true });
    const file = join(exampleConfig.outboxDir, `${ctx.job.id.padStart(4, '0')}-${template}-${to.replace(/[^a-z0-9@._-]/gi, '_')}.eml`);
    await writeFile(file, message, { signal: ctx.signal });
    ctx.log.info({ file }, 'email written to the outbox');
  },
});

/**
 * Computes sales totals over generated orders and writes them as JSON. The loop works in chunks: between
 * chunks it logs progress, checks `ctx.signal` (timeout, shutdown, cancellation) and yields to the event
 * loop so heartbeats and other jobs keep running.
 */
export const generateReport = defineJob({
  name: 'generate-report',
  queue: 'reports',
  schema: z.object({
    reportId: z.string().regex(/^[a-z0-9-]{1,64}$/),
    orders: z.number().int().min(1).max(1_000_000),
    seed: z.number().int(),
  }),
  retry: { maxAttempts: 3 },
  timeout: '30s',
  handler: async ({ reportId, orders, seed }, ctx) => {
    const random = mulberry32(seed);
    const regions = ['north', 'south', 'east', 'west'] as const;
    const byRegion = new Map<string, { orders: number; revenueCents: number }>(regions.map((r) => [r, { orders: 0, revenueCents: 0 }]));
    let largestCents = 0;
    const chunk = Math.ceil(orders / 5);
    for (let done = 0; done < orders; ) {
      ctx.signal.throwIfAborted();
      const end = Math.min(orders, done + chunk);
      for (; done < end; done++) {
        const region = regions[Math.floor(random() * regions.length)]!;
        const cents = 500 + Math.floor(random() * 20_000);
        const totals = byRegion.get(region)!;
        totals.orders++;
        totals.revenueCents += cents;
        largestCents = Math.max(largestCents, cents);
      }
      ctx.log.info({ reportId, progress: Math.round((done / orders) * 100) }, 'report progress');
      await yieldToEventLoop();
    }
    const revenueCents = [...byRegion.values()].reduce((sum, r) => sum + r.revenueCents, 0);
    const report = {
      reportId,
      generatedBy: { jobId: ctx.job.id, attempt: ctx.attempt },
      orders,
      revenue: cents(revenueCents),
      averageOrder: cents(Math.round(revenueCents / orders)),
      largestOrder: cents(largestCents),
      byRegion: Object.fromEntries([...byRegion].map(([region, r]) => [region, { orders: r.orders, revenue: cents(r.revenueCents) }])),
    };
    await mkdir(exampleConfig.reportsDir, { recursive: true });
    await writeFile(join(exampleConfig.reportsDir, `${reportId}.json`), `${JSON.stringify(report, null, 2)}\n`, { signal: ctx.signal });
    ctx.log.info({ reportId, revenue: report.revenue }, 'report written');
  },
});

/**
 * Calls a flaky third-party API. Each request is bounded twice: by `ctx.signal` (the job's timeout, lease
 * loss or shutdown) and by its own request timeout. 5xx and timeouts throw a plain error, so Warden retries
 * with backoff; a 4xx means the request itself is wrong, so it throws NonRetryableError (dead letters).
 * The job id goes along as the idempotency key, so the partner can ignore a request it already applied.
 */
export const callPartnerApi = defineJob({
  name: 'call-partner-api',
  queue: 'partner',
  schema: z.object({ requestId: z.string().min(1).max(100), amountCents: z.number().int().positive() }),
  retry: { maxAttempts: 5, backoff: { base: '200ms' } },
  timeout: '10s',
  handler: async ({ requestId, amountCents }, ctx) => {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(exampleConfig.partnerRequestTimeoutMs)]);
    let response: Response;
    try {
      response = await fetch(`${exampleConfig.partnerBaseUrl}/v1/payouts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `job-${ctx.job.id}`, 'x-request-id': requestId },
        body: JSON.stringify({ requestId, amountCents }),
        signal,
      });
    } catch (error) {
      // Our own shutdown, timeout or lost lease: let Warden record it as it is.
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if ((error as Error).name === 'TimeoutError') {
        throw new PartnerUnavailableError(`Expected the partner to answer within ${exampleConfig.partnerRequestTimeoutMs}ms, got no answer`, { cause: error });
      }
      throw new PartnerUnavailableError(`Expected to reach the partner API, got ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text();
    if (response.status >= 500) throw new PartnerUnavailableError(`Expected 200 from the partner, got ${response.status}: ${text}`);
    if (!response.ok) throw new NonRetryableError(`Expected 200 from the partner, got ${response.status}: ${text}`);
    ctx.log.info({ requestId, response: text }, 'partner accepted the payout');
  },
});

/**
 * A payment that can never succeed: the card is declined, which retrying will not change. Throwing
 * NonRetryableError sends the job straight to the dead letters after one attempt.
 */
export const chargeCard = defineJob({
  name: 'charge-card',
  queue: 'billing',
  schema: z.object({ customerId: z.string(), amountCents: z.number().int().positive(), cardLast4: z.string().length(4) }),
  retry: { maxAttempts: 5 },
  handler: async ({ cardLast4 }) => {
    throw new NonRetryableError(`card ending in ${cardLast4} was declined by the issuer`);
  },
});

/** Every job of the example, for `createWarden({ jobs })` and the CLI. */
export const jobs = [sendEmail, generateReport, callPartnerApi, chargeCard];

/** Integer cents as a decimal string, e.g. 12345 → "123.45". */
function cents(value: number): string {
  return (value / 100).toFixed(2);
}

/** A small seeded PRNG, so the generated data (and the report) is the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
