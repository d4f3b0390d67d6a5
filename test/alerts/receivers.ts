/**
 * Real receivers for the alert sinks, started by the tests on port 0: an HTTP server collecting webhook requests
 * (with the HMAC recomputed here, independently of Warden's own helper) and an SMTP server (`smtp-server`)
 * collecting emails. Waits resolve on arrival, with a real-time guard against hangs; nothing sleeps.
 * @module
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { AlertNotice } from '../../src/alerts/alert-notice.js';

/** Real-time bound of one wait. */
const GUARD_MS = 15_000;

/** A collection that can be awaited until it holds enough matching items. */
class Inbox<T> {
  readonly items: T[] = [];
  #waiters: (() => void)[] = [];

  push(item: T): void {
    this.items.push(item);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves with the matching items once there are at least `count`. */
  async waitFor(count: number, what: string, filter: (item: T) => boolean = () => true): Promise<T[]> {
    const deadline = Date.now() + GUARD_MS;
    for (;;) {
      const matching = this.items.filter(filter);
      if (matching.length >= count) return matching;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Expected ${count} ${what} within ${GUARD_MS}ms, got ${matching.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** One webhook request as received. */
export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body. */
  body: string;
  /** The parsed body (null for a bodiless request such as a heartbeat ping). */
  notice: AlertNotice;
  /** Whether `X-Warden-Signature` equals `sha256=HMAC-SHA256(secret, "<X-Warden-Timestamp>.<raw body>")`, recomputed here. */
  signatureValid: boolean;
}

/** A webhook receiver on 127.0.0.1. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hook`. */
  readonly url: string;
  readonly port: number;
  readonly inbox: Inbox<ReceivedWebhook>;
  /** Stops listening (connections refused) until {@link start}. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The HMAC a receiver expects, computed with node:crypto directly. */
export function expectedSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Starts a webhook receiver answering 204 to every POST. */
export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const inbox = new Inbox<ReceivedWebhook>();
  let server: Server;
  const make = () => createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(req.headers['x-warden-timestamp'] ?? '');
      inbox.push({
        path: req.url ?? '',
        headers: req.headers,
        body,
        notice: (body === '' ? null : JSON.parse(body)) as AlertNotice,
        signatureValid: req.headers['x-warden-signature'] === expectedSignature(secret, timestamp, body),
      });
      res.writeHead(204).end();
    });
  });
  const listen = (port: number) => new Promise<number>((resolve, reject) => {
    server = make();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  const stop = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  const port = await listen(0);
  return { url: `http://127.0.0.1:${port}/hook`, port, inbox, stop, start: async () => void (await listen(port)), close: stop };
}

/** One email as received. */
export interface ReceivedEmail {
  from: string;
  to: string[];
  subject: string;
  /** The decoded plain-text body. */
  text: string;
  headers: Record<string, string>;
}

/** An SMTP receiver on 127.0.0.1 (no TLS, no auth). */
export interface SmtpReceiver {
  readonly port: number;
  readonly inbox: Inbox<ReceivedEmail>;
  close(): Promise<void>;
}

/** Starts an SMTP server accepting every message. */
export async function startSmtpReceiver(): Promise<SmtpReceiver> {
  const inbox = new Inbox<ReceivedEmail>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        inbox.push(parseEmail(Buffer.concat(chunks).toString('utf8'), session.envelope.mailFrom ? session.envelope.mailFrom.address : '', session.envelope.rcptTo.map((r) => r.address)));
        callback();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.server.address() as AddressInfo).port));
  });
  return { port, inbox, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Headers (unfolded, lower-cased names) and the plain-text body (quoted-printable decoded) of a raw message. */
function parseEmail(raw: string, from: string, to: string[]): ReceivedEmail {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  let body = raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return { from, to, subject: headers.subject ?? '', text: body.replace(/\r\n/g, '\n'), headers };
}
