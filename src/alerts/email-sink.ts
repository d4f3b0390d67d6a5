/**
 * The email sink: each notice as a plain-text email over SMTP through `nodemailer`. One transport per sink,
 * created on first use; not pooled, so nothing stays connected between alerts.
 * @module
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { AlertDeliveryError } from '../errors.js';
import type { ResolvedEmailSink } from './alert-options.js';
import { type AlertNotice, formatAlertEmail } from './alert-notice.js';

/** Sends notices to email sinks. */
export class EmailSender {
  readonly #transports = new Map<string, Transporter<SMTPTransport.SentMessageInfo>>();

  /**
   * Sends one notice. Resolves when the SMTP server accepted it for every recipient.
   * @throws AlertDeliveryError when the server is unreachable, refuses, or rejects a recipient (the delivery
   *   job then retries with backoff).
   */
  async send(sink: ResolvedEmailSink, notice: AlertNotice): Promise<void> {
    const { subject, text } = formatAlertEmail(notice, sink.subjectPrefix);
    let info: SMTPTransport.SentMessageInfo;
    try {
      info = await this.#transport(sink).sendMail({
        from: sink.from,
        to: [...sink.to],
        subject,
        text,
        // Threads the opened and resolved notices of one episode together in mail clients.
        headers: { 'X-Warden-Notice': notice.id, 'X-Warden-Alert': notice.key },
      });
    } catch (error) {
      throw new AlertDeliveryError(sink.name, (error as Error)?.message ?? String(error), { cause: error });
    }
    if (info.rejected.length > 0) throw new AlertDeliveryError(sink.name, `recipients rejected: ${info.rejected.map(String).join(', ')}`);
  }

  /** Closes the transports. Safe to call twice. */
  close(): void {
    for (const transport of this.#transports.values()) transport.close();
    this.#transports.clear();
  }

  #transport(sink: ResolvedEmailSink): Transporter<SMTPTransport.SentMessageInfo> {
    let transport = this.#transports.get(sink.name);
    if (!transport) {
      const timeouts = { connectionTimeout: sink.timeoutMs, greetingTimeout: sink.timeoutMs, socketTimeout: sink.timeoutMs };
      const options: SMTPTransport.Options = typeof sink.smtp === 'string' ? { url: sink.smtp, ...timeouts } : { ...sink.smtp, ...timeouts };
      transport = nodemailer.createTransport(options);
      this.#transports.set(sink.name, transport);
    }
    return transport;
  }
}
