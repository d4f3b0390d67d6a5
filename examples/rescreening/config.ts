/**
 * The re-screening example's settings: defaults, read from the environment and the command line, so the
 * same code runs as `npm run example:rescreening`, as the crash demo's worker child, and from a test with an
 * isolated database.
 * @module
 */

/** Everything the example can be told. */
export interface RescreeningOptions {
  /** `sqlite:<file>` or `postgres://…`. Env `WARDEN_DATABASE_URL`. @default "sqlite:./rescreening.db" */
  databaseUrl: string;
  /**
   * PostgreSQL only: the schema holding Warden's tables and the application's (`app_*`). Env `WARDEN_SCHEMA`.
   * @default "warden_rescreening"
   */
  schema: string;
  /** Delete the SQLite file / drop the PostgreSQL schema first. Env `RESCREEN_RESET=0` keeps it. @default true */
  reset: boolean;
  /** Customers seeded into an empty database. Env `RESCREEN_CUSTOMERS`, `--customers N`. @default 5000 */
  customers: number;
  /** Share of the seeded customers that are due for re-screening. @default 0.8 */
  dueShare: number;
  /** Customers per chunk (one step, one transactional batch, one checkpoint). Env `RESCREEN_CHUNK`. @default 500 */
  chunkSize: number;
  /** Share of service calls answered 503 (nothing done). Env `RESCREEN_FAILURE_RATE`. @default 0.05 */
  failureRate: number;
  /**
   * Share of service calls that screen, then hang past the client's timeout (the answer is lost, the effect is
   * not). Env `RESCREEN_TIMEOUT_RATE`. @default 0.01
   */
  timeoutRate: number;
  /** The client's timeout per HTTP request. Env `RESCREEN_REQUEST_TIMEOUT_MS`. @default 500 */
  requestTimeoutMs: number;
  /** HTTP requests per customer within one step run before the step gives up. Env `RESCREEN_MAX_TRIES`. @default 4 */
  maxTries: number;
  /** Requests in flight at once while screening a chunk. @default 16 */
  concurrency: number;
  /** The schedule's cron pattern. Env `RESCREEN_CRON` (e.g. `"*\/5 * * * * *"` to watch overlap "skip"). @default "0 * * * *" */
  cron: string;
  /**
   * Run the worker in a child process, SIGKILL it once mid-run and start another, to show the run resuming
   * from its checkpoint. Env `RESCREEN_CRASH=1`, `--crash`. @default false
   */
  crash: boolean;
  /** Seed of the customer data and of the fake service's failures. Env `RESCREEN_SEED`. @default 42 */
  seed: number;
  /** Longest the example waits for the run. @default 120000 */
  deadlineMs: number;
  /** Warden's log level (JSON on stderr). Env `WARDEN_LOG_LEVEL`. @default "warn" */
  logLevel: string;
}

/** The defaults, as documented on {@link RescreeningOptions}. */
export const DEFAULT_OPTIONS: RescreeningOptions = {
  databaseUrl: 'sqlite:./rescreening.db',
  schema: 'warden_rescreening',
  reset: true,
  customers: 5_000,
  dueShare: 0.8,
  chunkSize: 500,
  failureRate: 0.05,
  timeoutRate: 0.01,
  requestTimeoutMs: 500,
  maxTries: 4,
  concurrency: 16,
  cron: '0 * * * *',
  crash: false,
  seed: 42,
  deadlineMs: 120_000,
  logLevel: 'warn',
};

/**
 * Reads the options from the environment and `argv` (`--crash`, `--customers N`, `--keep`), over the defaults.
 * @throws Error naming the setting when a value is not valid.
 */
export function readOptions(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): RescreeningOptions {
  const o: RescreeningOptions = { ...DEFAULT_OPTIONS };
  // An empty variable means "unset", as `WARDEN_DATABASE_URL=` does for Warden itself.
  const str = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  o.databaseUrl = str('WARDEN_DATABASE_URL') ?? o.databaseUrl;
  o.schema = str('WARDEN_SCHEMA') ?? o.schema;
  o.logLevel = str('WARDEN_LOG_LEVEL') ?? o.logLevel;
  o.cron = str('RESCREEN_CRON') ?? o.cron;
  o.reset = str('RESCREEN_RESET') === undefined ? o.reset : str('RESCREEN_RESET') !== '0';
  o.crash = str('RESCREEN_CRASH') === undefined ? o.crash : str('RESCREEN_CRASH') !== '0';
  const num = (name: string, fallback: number, check: (n: number) => boolean, expected: string) => {
    const text = str(name);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!check(n)) throw new Error(`Expected ${name} to be ${expected}, got ${JSON.stringify(text)}`);
    return n;
  };
  const int = (min: number, max: number) => (n: number) => Number.isInteger(n) && n >= min && n <= max;
  const rate = (n: number) => Number.isFinite(n) && n >= 0 && n < 1;
  o.customers = num('RESCREEN_CUSTOMERS', o.customers, int(0, 10_000_000), 'an integer from 0 to 10000000');
  // At most 1,000: a chunk's recorded step result (about 110 bytes a customer) must stay within the payload limit.
  o.chunkSize = num('RESCREEN_CHUNK', o.chunkSize, int(1, 1_000), 'an integer from 1 to 1000');
  o.failureRate = num('RESCREEN_FAILURE_RATE', o.failureRate, rate, 'a number from 0 to below 1');
  o.timeoutRate = num('RESCREEN_TIMEOUT_RATE', o.timeoutRate, rate, 'a number from 0 to below 1');
  o.requestTimeoutMs = num('RESCREEN_REQUEST_TIMEOUT_MS', o.requestTimeoutMs, int(10, 60_000), 'an integer number of milliseconds from 10 to 60000');
  o.maxTries = num('RESCREEN_MAX_TRIES', o.maxTries, int(1, 20), 'an integer from 1 to 20');
  o.seed = num('RESCREEN_SEED', o.seed, int(0, 2 ** 31), 'a non-negative integer');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--crash') o.crash = true;
    else if (arg === '--keep') o.reset = false;
    else if (arg === '--customers') {
      const n = Number(argv[++i]);
      if (!int(0, 10_000_000)(n)) throw new Error(`Expected --customers to be followed by an integer from 0 to 10000000, got ${JSON.stringify(argv[i])}`);
      o.customers = n;
    } else throw new Error(`Expected --crash, --keep or --customers N, got ${JSON.stringify(arg)}`);
  }
  return o;
}

/**
 * The options as environment variables, for a child process that must see exactly the same settings
 * (the crash demo's worker).
 */
export function optionsToEnv(o: RescreeningOptions): Record<string, string> {
  return {
    WARDEN_DATABASE_URL: o.databaseUrl,
    WARDEN_SCHEMA: o.schema,
    WARDEN_LOG_LEVEL: o.logLevel,
    RESCREEN_CRON: o.cron,
    RESCREEN_CHUNK: String(o.chunkSize),
    RESCREEN_REQUEST_TIMEOUT_MS: String(o.requestTimeoutMs),
    RESCREEN_MAX_TRIES: String(o.maxTries),
  };
}
