/**
 * The `alerts` option of `createWarden`: sinks, rule thresholds, heartbeat URLs and delivery, with their defaults,
 * validated once at construction so a typo fails at startup with an error naming the field.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import { type RetryOptions, resolveRetryPolicy } from '../job/retry-policy.js';
import { booleanOption } from '../validation/boolean-option.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { isOptionsObject } from '../validation/options-object.js';
import { validateName } from '../validation/names.js';

/**
 * An HTTP endpoint receiving each notice as a JSON `POST`, signed with HMAC-SHA256 (see docs/alerts.md and
 * `verifyWebhookSignature`), delivered through Warden's own queue with retries.
 */
export interface WebhookSinkOptions {
  type: 'webhook';
  /** Unique among the sinks; names the sink in delivery jobs and logs. `^[a-z0-9][a-z0-9._-]{0,63}$`. @default "webhook" */
  name?: string;
  /**
   * `http:` or `https:` URL, without user-info: credentials go in `headers` (e.g. `Authorization`). Errors and logs
   * name only its host, so a token in its path or query is not shown.
   */
  url: string;
  /** The HMAC key the receiver verifies `X-Warden-Signature` with; at least 16 characters. */
  secret: string;
  /** Extra request headers (e.g. an `Authorization` the receiver wants). @default {} */
  headers?: Record<string, string>;
  /** How long one delivery attempt may take before it fails and is retried. @default "10s" */
  timeout?: Duration;
}

/** SMTP connection settings for an email sink, as `nodemailer` takes them (a subset). */
export interface SmtpOptions {
  host: string;
  /** @default 587, or 465 when `secure` */
  port?: number;
  /** TLS from the start (port 465). Otherwise STARTTLS is used when the server offers it. @default false */
  secure?: boolean;
  /** Refuse to send unless STARTTLS succeeds. @default false */
  requireTLS?: boolean;
  /** Never attempt STARTTLS (local relays, tests). @default false */
  ignoreTLS?: boolean;
  auth?: { user: string; pass: string };
}

/** Email over SMTP through `nodemailer`, delivered through Warden's own queue with retries. */
export interface EmailSinkOptions {
  type: 'email';
  /** Unique among the sinks. @default "email" */
  name?: string;
  /** The SMTP server: settings, or a URL such as `smtps://user:pass@smtp.example.com`. */
  smtp: SmtpOptions | string;
  /** Sender address, e.g. `"Warden <warden@example.com>"`. */
  from: string;
  /** Recipient address(es). */
  to: string | string[];
  /** Put before every subject. @default "[warden]" */
  subjectPrefix?: string;
  /** Connection, greeting and socket timeout of one delivery attempt. @default "30s" */
  timeout?: Duration;
}

/** Where notices go, besides the log (always). */
export type AlertSinkOptions = WebhookSinkOptions | EmailSinkOptions;

/** The built-in rules and their thresholds. `false` turns a rule off. */
export interface AlertRulesOptions {
  /** A job reached the dead letters (once per dead job, not per failed attempt). @default true */
  deadLetter?: boolean;
  /** `count` attempts of one job type failed in a row (in one instance). @default { count: 5 } */
  consecutiveFailures?: { count?: number } | false;
  /**
   * At least `threshold` (0 < t <= 1) of a job type's attempts failed within `window`, counted once there were
   * `minAttempts` (in one instance). @default { threshold: 0.5, window: "15m", minAttempts: 20 }
   */
  failureRate?: { threshold?: number; window?: Duration; minAttempts?: number } | false;
  /** Dead man's switch for every schedule with `expect.within`. @default true */
  missedRun?: boolean;
  /**
   * A running attempt passed its schedule's `expect.maxRuntime`, or `threshold` for any job (null: schedules only).
   * @default { threshold: null }
   */
  runTooLong?: { threshold?: Duration | null } | false;
  /** The oldest due job of an unpaused queue has waited longer than `threshold`. @default { threshold: "5m" } */
  queueLag?: { threshold?: Duration } | false;
  /** `count` leases of one job type expired (jobs rescued) within `window` (in one instance). @default { count: 3, window: "15m" } */
  leaseExpiry?: { count?: number; window?: Duration } | false;
}

/** `createWarden({ alerts })`. Giving it turns alerting on; every field has a default. */
export interface AlertsOptions {
  /** Webhook and email sinks; notices always go to the log too. @default [] */
  sinks?: AlertSinkOptions[];
  rules?: AlertRulesOptions;
  /** How often the database-based rules (missed run, run too long, queue lag, resolutions) are evaluated. @default "15s" */
  checkInterval?: Duration;
  /**
   * External heartbeat URLs by schedule name (Healthchecks.io style), for schedules that do not set
   * `defineSchedule({ heartbeat })`: `<url>/start` when a run starts, `<url>` on success, `<url>/fail` on failure.
   * `http:` or `https:`, without user-info, query or fragment.
   * @default {}
   */
  heartbeats?: Record<string, string>;
  /** How long one heartbeat ping may take; pings never fail a job. @default "5s" */
  heartbeatTimeout?: Duration;
  /** How notices reach the webhook and email sinks: as jobs of this queue, retried with this policy. */
  delivery?: {
    /** @default "warden" */
    queue?: string;
    /** @default { maxAttempts: 12, backoff: { type: "exponential", base: "10s", max: "30m" } } (about 2.5 hours in all) */
    retry?: RetryOptions;
  };
}

/** A validated webhook sink. */
export interface ResolvedWebhookSink {
  type: 'webhook';
  name: string;
  url: string;
  secret: string;
  headers: Readonly<Record<string, string>>;
  timeoutMs: number;
}

/** A validated email sink. */
export interface ResolvedEmailSink {
  type: 'email';
  name: string;
  smtp: SmtpOptions | string;
  from: string;
  to: readonly string[];
  subjectPrefix: string;
  timeoutMs: number;
}

/** A validated sink of either type. */
export type ResolvedSink = ResolvedWebhookSink | ResolvedEmailSink;

/** {@link AlertsOptions} with defaults applied; a disabled rule is null (or false). */
export interface ResolvedAlertOptions {
  sinks: readonly ResolvedSink[];
  rules: {
    deadLetter: boolean;
    consecutiveFailures: { count: number } | null;
    failureRate: { threshold: number; windowMs: number; minAttempts: number } | null;
    missedRun: boolean;
    runTooLong: { thresholdMs: number | null } | null;
    queueLag: { thresholdMs: number } | null;
    leaseExpiry: { count: number; windowMs: number } | null;
  };
  checkIntervalMs: number;
  heartbeats: ReadonlyMap<string, string>;
  heartbeatTimeoutMs: number;
  delivery: { queue: string; retry: RetryOptions };
}

/** The delivery retry policy when none is given: 12 attempts, 10s doubling to 30m, about 2.5 hours in all. */
export const DEFAULT_DELIVERY_RETRY: RetryOptions = Object.freeze({ maxAttempts: 12, backoff: Object.freeze({ type: 'exponential', base: '10s', max: '30m' }) }) as RetryOptions;

const SINK_TYPES = ['webhook', 'email'] as const;
const SECRET_MIN_LENGTH = 16;

/*
 * The keys of each object of the option, checked against its interface (an option added there cannot be missing
 * here): any other key is refused, since a misspelt one (`secert`, `heartbeat`) would silently be ignored.
 */
const ALERTS_KEYS = Object.keys({ sinks: true, rules: true, checkInterval: true, heartbeats: true, heartbeatTimeout: true, delivery: true } satisfies Record<keyof AlertsOptions, true>);
const DELIVERY_KEYS = Object.keys({ queue: true, retry: true } satisfies Record<keyof NonNullable<AlertsOptions['delivery']>, true>);
const RULES_KEYS = Object.keys({
  deadLetter: true, consecutiveFailures: true, failureRate: true, missedRun: true, runTooLong: true, queueLag: true, leaseExpiry: true,
} satisfies Record<keyof AlertRulesOptions, true>);
const WEBHOOK_KEYS = Object.keys({ type: true, name: true, url: true, secret: true, headers: true, timeout: true } satisfies Record<keyof WebhookSinkOptions, true>);
const EMAIL_KEYS = Object.keys({ type: true, name: true, smtp: true, from: true, to: true, subjectPrefix: true, timeout: true } satisfies Record<keyof EmailSinkOptions, true>);

/**
 * An HTTP header name as fetch accepts it (RFC 9110 `token`). Checked before a name is shown in an error: one that
 * is not a name may be a whole header line, credential included (`"Authorization: Bearer …"`).
 */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Applies defaults and validates.
 * @throws InvalidOptionError, InvalidDurationError, InvalidNameError naming the field at fault (`alerts.sinks[1].url`).
 */
export function resolveAlertOptions(options: AlertsOptions): ResolvedAlertOptions {
  // A container refused whole is kept as its kind only: it may hold sinks, and with them secrets and passwords.
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new InvalidOptionError('alerts', kindOf(options), 'an object');
  checkKnownKeys('alerts', options, ALERTS_KEYS);
  const sinksOption = options.sinks ?? [];
  if (!Array.isArray(sinksOption)) throw new InvalidOptionError('alerts.sinks', kindOf(sinksOption), 'an array of webhook and email sinks');
  const sinks = sinksOption.map((sink, i) => resolveSink(`alerts.sinks[${i}]`, sink));
  const names = new Set<string>();
  for (const [i, sink] of sinks.entries()) {
    if (names.has(sink.name)) throw new InvalidOptionError(`alerts.sinks[${i}].name`, sink.name, 'a name no other sink has (set `name` on sinks of the same type)');
    names.add(sink.name);
  }
  const heartbeats = new Map<string, string>();
  const hb = options.heartbeats ?? {};
  if (typeof hb !== 'object' || hb === null || Array.isArray(hb)) throw new InvalidOptionError('alerts.heartbeats', kindOf(hb), 'an object mapping schedule names to URLs');
  for (const [schedule, url] of Object.entries(hb)) {
    validateName('alerts.heartbeats schedule name', schedule);
    heartbeats.set(schedule, heartbeatUrl(`alerts.heartbeats["${schedule}"]`, url));
  }
  const delivery = options.delivery ?? {};
  if (!isOptionsObject(delivery)) throw new InvalidOptionError('alerts.delivery', kindOf(delivery), 'an object { queue?, retry? }');
  checkKnownKeys('alerts.delivery', delivery, DELIVERY_KEYS);
  const retry = delivery.retry ?? DEFAULT_DELIVERY_RETRY;
  resolveRetryPolicy('alerts.delivery.retry', retry);
  return {
    sinks,
    rules: resolveRules(options.rules ?? {}),
    checkIntervalMs: parseDuration('alerts.checkInterval', options.checkInterval ?? '15s', { allowZero: false }),
    heartbeats,
    heartbeatTimeoutMs: parseDuration('alerts.heartbeatTimeout', options.heartbeatTimeout ?? '5s', { allowZero: false }),
    delivery: { queue: validateName('alerts.delivery.queue', delivery.queue ?? 'warden'), retry },
  };
}

/**
 * Checks a heartbeat base URL (http or https, no query or fragment, so `/start` and `/fail` can be appended) and
 * returns it without a trailing slash.
 * @throws InvalidOptionError
 */
export function heartbeatUrl(field: string, value: unknown): string {
  const url = httpUrl(field, value, 'heartbeat services take their key in the path');
  if (url.search !== '' || url.hash !== '') throw new InvalidOptionError(field, urlShape(value), 'a URL without a query or fragment (`/start` and `/fail` are appended to its path)');
  return String(value).replace(/\/+$/, '');
}

function resolveRules(rules: AlertRulesOptions): ResolvedAlertOptions['rules'] {
  if (!isOptionsObject(rules)) throw new InvalidOptionError('alerts.rules', kindOf(rules), 'an object');
  checkKnownKeys('alerts.rules', rules, RULES_KEYS);
  const f = (name: string) => `alerts.rules.${name}`;
  const consecutive = ruleObject(f('consecutiveFailures'), rules.consecutiveFailures, ['count']);
  const rate = ruleObject(f('failureRate'), rules.failureRate, ['threshold', 'window', 'minAttempts']);
  const tooLong = ruleObject(f('runTooLong'), rules.runTooLong, ['threshold']);
  const lag = ruleObject(f('queueLag'), rules.queueLag, ['threshold']);
  const lease = ruleObject(f('leaseExpiry'), rules.leaseExpiry, ['count', 'window']);
  const threshold = rate?.threshold ?? 0.5;
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) throw new InvalidOptionError(f('failureRate.threshold'), threshold, 'a fraction greater than 0 and at most 1');
  const runThreshold = tooLong?.threshold ?? null;
  return {
    deadLetter: booleanOption(f('deadLetter'), rules.deadLetter, true),
    consecutiveFailures: consecutive && { count: int(f('consecutiveFailures.count'), consecutive.count ?? 5, 1, 10_000) },
    failureRate: rate && {
      threshold,
      windowMs: parseDuration(f('failureRate.window'), rate.window ?? '15m', { allowZero: false }),
      minAttempts: int(f('failureRate.minAttempts'), rate.minAttempts ?? 20, 1, 1_000_000),
    },
    missedRun: booleanOption(f('missedRun'), rules.missedRun, true),
    runTooLong: tooLong && { thresholdMs: runThreshold === null ? null : parseDuration(f('runTooLong.threshold'), runThreshold, { allowZero: false }) },
    queueLag: lag && { thresholdMs: parseDuration(f('queueLag.threshold'), lag.threshold ?? '5m', { allowZero: false }) },
    leaseExpiry: lease && {
      count: int(f('leaseExpiry.count'), lease.count ?? 3, 1, 1_000_000),
      windowMs: parseDuration(f('leaseExpiry.window'), lease.window ?? '15m', { allowZero: false }),
    },
  };
}

/** A rule given as `false` (off), an object of the thresholds `known`, or nothing (on, defaults). */
function ruleObject<T extends object>(field: string, value: T | false | undefined, known: readonly (keyof T & string)[]): Partial<T> | null {
  if (value === false) return null;
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(field, value, 'false or an object of thresholds');
  checkKnownKeys(field, value, known);
  return value;
}


function int(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new InvalidOptionError(field, value, `an integer from ${min} to ${max}`);
  return value;
}

/**
 * Checks an `http:` or `https:` URL without user-info. Credentials in a URL (`https://user:token@host/…`) are
 * refused: fetch will not send them (it throws a TypeError quoting the whole URL, which would end up in stored
 * errors and logs), and a URL is shown in too many places to hold a secret.
 * @param credentialsHint where credentials go instead, for the error message.
 * @throws InvalidOptionError whose message and `value` show the URL's shape, never its user-info, path or query.
 */
function httpUrl(field: string, value: unknown, credentialsHint = 'send credentials in `headers`, e.g. `{ Authorization: "Bearer …" }`'): URL {
  const expected = 'an absolute http: or https: URL';
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new InvalidOptionError(field, urlShape(value), expected);
  }
  if (typeof value !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new InvalidOptionError(field, urlShape(value), expected);
  if (url.username !== '' || url.password !== '') throw new InvalidOptionError(field, urlShape(value), `${expected} without user-info ("user:password@" before the host; ${credentialsHint})`);
  return url;
}

/**
 * A URL option's value as error messages show it: scheme, host and port, with placeholders for the parts that can
 * hold secrets (user-info, path, query, fragment), so the operator sees which part is wrong and nothing more.
 * Non-strings are shown as they are (they hold no URL).
 */
function urlShape(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not parseable: cut out what would be user-info, and everything after the host.
    return value.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1[user-info]@').replace(/^((?:[^:/?#]*:\/\/)?[^/?#]*)[/?#].*$/s, '$1/…');
  }
  const userInfo = url.username !== '' || url.password !== '' ? '[user-info]@' : '';
  const path = url.pathname !== '' && url.pathname !== '/' ? '/[path]' : url.pathname;
  return `${url.protocol}//${userInfo}${url.host}${path}${url.search !== '' ? '?[query]' : ''}${url.hash !== '' ? '#[fragment]' : ''}`;
}

/** The {@link SmtpOptions} fields that hold no credentials, shown as given when `smtp` is refused. */
const SMTP_SHOWN = ['host', 'port', 'secure', 'requireTLS', 'ignoreTLS'] as const;

/**
 * An `smtp` settings object as a validation error keeps it (`InvalidOptionError.value`, which error serializers such
 * as pino's log with every other own property): the connection fields as given, `auth` as `"(hidden)"` (its `pass`,
 * or OAuth2 tokens), and nothing else, since an unknown field may be a secret given under another name. Values that
 * are not objects hold no settings and are kept.
 */
function smtpShape(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const given = value as Record<string, unknown>;
  const shown: Record<string, unknown> = {};
  for (const name of SMTP_SHOWN) if (name in given) shown[name] = given[name];
  if ('auth' in given) shown.auth = '(hidden)';
  return shown;
}

/**
 * A webhook's `headers` as a validation error keeps it: the header names, each string value as `"(hidden)"` (they
 * carry the receiver's credentials, e.g. `Authorization`) and any other value's type, which is what was wrong. A key
 * that is not a header name is hidden too, by its position: it may be a whole header line, credential included.
 */
function headersShape(value: unknown): unknown {
  if (typeof value === 'string') return '(hidden)';
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([name, v], i) => [
    HEADER_NAME.test(name) ? name : `(not a header name, #${i})`,
    typeof v === 'string' ? '(hidden)' : `(${v === null ? 'null' : typeof v})`,
  ]));
}

/**
 * Checks a webhook's `headers` as fetch will (`new Headers`), so a header it cannot send fails here, at
 * `createWarden`, rather than every delivery: fetch's TypeError quotes the value, a credential, and would be stored
 * as each delivery job's error and logged. The TypeError is not kept as `cause` for the same reason.
 * @throws InvalidOptionError whose `value` is {@link headersShape} of the headers.
 */
function checkHeaders(field: string, headers: unknown): Readonly<Record<string, string>> {
  if (!isOptionsObject(headers) || Object.values(headers).some((v) => typeof v !== 'string')) {
    throw new InvalidOptionError(field, headersShape(headers), 'an object of string header values');
  }
  for (const [name, value] of Object.entries(headers as Record<string, string>)) {
    if (!HEADER_NAME.test(name)) throw new InvalidOptionError(field, headersShape(headers), "an object whose keys are HTTP header names (letters, digits and !#$%&'*+-.^_`|~)");
    try {
      new Headers([[name, value]]);
    } catch {
      throw new InvalidOptionError(`${field}["${name}"]`, '(hidden)', 'a header value fetch can send: Latin-1 text without NUL, CR or LF');
    }
  }
  return Object.freeze({ ...(headers as Record<string, string>) });
}

/**
 * What an error keeps of a refused container (the options, the sinks, the heartbeat URLs): its kind, such as
 * `"(array of 2)"` or `"(object)"`, never its contents, which may carry credentials. A primitive is kept as it is.
 */
function kindOf(value: unknown): unknown {
  if (Array.isArray(value)) return `(array of ${value.length})`;
  if (typeof value === 'object' && value !== null) return '(object)';
  return value;
}

function address(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^(?:[^@\s<>]+@[^@\s<>]+|[^<>]*<[^@\s<>]+@[^@\s<>]+>)$/.test(value.trim())) throw new InvalidOptionError(field, value, 'an email address such as "ops@example.com" or "Ops <ops@example.com>"');
  return value.trim();
}

function resolveSink(field: string, sink: AlertSinkOptions): ResolvedSink {
  if (typeof sink !== 'object' || sink === null) throw new InvalidOptionError(field, typeof sink === 'string' ? '(hidden)' : sink, 'a sink object ({ type: "webhook", … } or { type: "email", … })');
  if (!SINK_TYPES.includes(sink.type)) throw new InvalidOptionError(`${field}.type`, sink.type, '"webhook" or "email"');
  checkKnownKeys(field, sink, sink.type === 'webhook' ? WEBHOOK_KEYS : EMAIL_KEYS);
  const name = validateName(`${field}.name`, sink.name ?? sink.type);
  if (sink.type === 'webhook') {
    httpUrl(`${field}.url`, sink.url);
    if (typeof sink.secret !== 'string' || sink.secret.length < SECRET_MIN_LENGTH) throw new InvalidOptionError(`${field}.secret`, sink.secret === undefined ? undefined : '(hidden)', `a string of at least ${SECRET_MIN_LENGTH} characters`);
    const headers = checkHeaders(`${field}.headers`, sink.headers ?? {});
    return Object.freeze({ type: 'webhook', name, url: sink.url, secret: sink.secret, headers, timeoutMs: parseDuration(`${field}.timeout`, sink.timeout ?? '10s', { allowZero: false }) });
  }
  const smtp = sink.smtp;
  if (typeof smtp === 'string') {
    if (!/^smtps?:\/\//.test(smtp)) throw new InvalidOptionError(`${field}.smtp`, '(url)', 'an smtp:// or smtps:// URL, or { host, port, … }');
  } else if (typeof smtp !== 'object' || smtp === null || typeof smtp.host !== 'string' || smtp.host === '') {
    throw new InvalidOptionError(`${field}.smtp`, smtpShape(smtp), 'an smtp:// or smtps:// URL, or { host, port, … }');
  } else if (smtp.port !== undefined) {
    int(`${field}.smtp.port`, smtp.port, 1, 65_535);
  }
  const to = (Array.isArray(sink.to) ? sink.to : [sink.to]).map((a, i) => address(`${field}.to${Array.isArray(sink.to) ? `[${i}]` : ''}`, a));
  if (to.length === 0) throw new InvalidOptionError(`${field}.to`, sink.to, 'at least one address');
  const subjectPrefix = sink.subjectPrefix ?? '[warden]';
  if (typeof subjectPrefix !== 'string') throw new InvalidOptionError(`${field}.subjectPrefix`, subjectPrefix, 'a string');
  return Object.freeze({
    type: 'email', name, smtp, from: address(`${field}.from`, sink.from), to: Object.freeze(to), subjectPrefix,
    timeoutMs: parseDuration(`${field}.timeout`, sink.timeout ?? '30s', { allowZero: false }),
  });
}
