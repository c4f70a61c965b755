import { readFileSync } from 'node:fs';
import { z } from 'zod';

// One model of the environment, parsed once at startup. Defaults work on a laptop with nothing installed:
// without DATABASE_URL the service starts an embedded PostgreSQL whose data lives under .data/.
const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const onOff = () => z.enum(['true', 'false']).optional();

/** How a setting is given as an option of startJobql (camelCase of its variable); `none`: environment only. */
type OptionKind = 'string' | 'number' | 'boolean' | 'list' | 'duration' | 'none';
type OptionValue<K extends OptionKind> = K extends 'number'
  ? number
  : K extends 'boolean'
    ? boolean
    : K extends 'list'
      ? string | readonly string[]
      : K extends 'duration'
        ? string | number
        : string;

/**
 * A setting: the environment variable it is read from, the zod schema that checks it and makes its value, how
 * it is given as an option, and the line `jobql --help` prints for it.
 */
type Setting<S extends z.ZodType = z.ZodType, V extends string = string, K extends OptionKind = OptionKind> = {
  variable: V;
  schema: S;
  option: K;
  help: string;
};
type Settings = { [key: string]: Setting | Settings };
/** The values of a tree of settings, typed by what each schema outputs. */
type Parsed<T> = T extends Setting<infer S> ? z.output<S> : { [K in keyof T]: Parsed<T[K]> };

function setting<S extends z.ZodType, V extends string, K extends OptionKind>(
  variable: V,
  schema: S,
  { option, help }: { option: K; help: string },
): Setting<S, V, K> {
  return { variable, schema, option, help };
}

// Every setting, once, grouped by the part of the service that uses it: a new setting is one line here (its
// variable, its check and default, the field it lands in) plus its row in the README's configuration table. The
// few values that depend on more than one variable are finished in `finish` below.
const settings = {
  database: {
    /** Connection string; undefined means: start the embedded PostgreSQL. */
    url: setting(
      'DATABASE_URL',
      z
        .string()
        .trim()
        .optional()
        .transform((value) => (value === '' ? undefined : value))
        .refine((value) => value === undefined || /^postgres(ql)?:\/\//.test(value), 'must be a postgres:// URL'),
      { option: 'string', help: 'postgres:// URL of the database (created when missing); unset: the embedded PostgreSQL' },
    ),
    // Every query, connection and startup is bounded, so a database that hangs (rather than refusing) cannot hang
    // requests, the runner or startup with it.
    /** Longest a statement may run (server side, and client side when the server does not answer) and a connection may take to open. */
    timeouts: {
      statementMs: setting('DATABASE_STATEMENT_TIMEOUT_MS', integer(100, 3_600_000).default(30_000), {
        option: 'number',
        help: 'longest a statement may run, in ms (migrations too)',
      }),
      connectMs: setting('DATABASE_CONNECT_TIMEOUT_MS', integer(100, 600_000).default(5000), {
        option: 'number',
        help: 'longest opening a database connection may take, in ms',
      }),
    },
    /** How long startup waits for the database to answer, retrying, before it gives up. */
    startupTimeoutMs: setting('DATABASE_STARTUP_TIMEOUT_MS', integer(0, 86_400_000).default(60_000), {
      option: 'number',
      help: 'how long startup waits for the database to answer, in ms',
    }),
    embeddedDir: setting('EMBEDDED_POSTGRES_DIR', z.string().trim().min(1).default('.data/postgres'), {
      option: 'string',
      help: 'data folder of the embedded PostgreSQL (only without DATABASE_URL)',
    }),
    embeddedPort: setting('EMBEDDED_POSTGRES_PORT', integer(1, 65535).default(54329), {
      option: 'number',
      help: 'port of the embedded PostgreSQL, on 127.0.0.1',
    }),
  },
  http: {
    port: setting('PORT', integer(0, 65535).default(4000), { option: 'number', help: 'HTTP port (0: any free port)' }),
    host: setting('HOST', z.string().trim().min(1).default('127.0.0.1'), { option: 'string', help: 'address to listen on' }),
    // A second port with only /healthz, /readyz and /metrics: for worker-only processes, which have no API
    // port, and for keeping metrics off the public port.
    /** Port of the probes-and-metrics server; null: none (the API port serves them anyway). */
    metricsPort: setting(
      'METRICS_PORT',
      integer(0, 65535)
        .optional()
        .transform((port) => port ?? null),
      { option: 'number', help: 'a second port serving only /healthz, /readyz and /metrics' },
    ),
    // Browser origins (scheme://host[:port]) allowed to call the API cross-origin, comma-separated; `*`: any.
    // Unset: none (same-origin pages and non-browser clients only).
    /** Origins allowed cross-origin; ['*'] for any; empty for none. */
    corsOrigins: setting('CORS_ORIGINS', z.string().optional().transform(parseCorsOrigins), {
      option: 'list',
      help: 'origins whose pages may call the API from a browser (comma-separated; *: any)',
    }),
    // Host names (without port) the API answers to besides the loopback names and HOST, comma-separated;
    // `*`: any. Unset: none more in open mode; any with API_KEYS.
    /** Host names accepted in the Host header besides loopback and HOST; ['*'] for any; null: the mode's default. */
    allowedHosts: setting(
      'ALLOWED_HOSTS',
      z
        .string()
        .optional()
        .transform((text) => (text?.trim() ? listOf(text).map((host) => host.toLowerCase()) : null)),
      { option: 'list', help: 'host names the API answers to besides loopback and HOST (comma-separated; *: any)' },
    ),
    // Off by default in production (NODE_ENV=production), on otherwise: see finish.
    graphiql: setting('GRAPHIQL', onOff(), {
      option: 'boolean',
      help: 'serve GraphiQL at /graphql (default: on, off when NODE_ENV=production)',
    }),
    introspection: setting('INTROSPECTION', onOff(), {
      option: 'boolean',
      help: 'answer introspection (default: on, off when NODE_ENV=production)',
    }),
    // The dashboard at /ui is on in production too: it holds no data of its own, and with API_KEYS set it asks
    // for a key like any other client. DASHBOARD=false turns it off.
    dashboard: setting('DASHBOARD', onOff(), {
      option: 'boolean',
      help: 'serve the dashboard at /ui (default: on, also when NODE_ENV=production)',
    }),
  },
  auth: {
    // `tenant:key` pairs separated by commas or new lines; API_KEYS_FILE names a file of them, one a line.
    apiKeys: setting('API_KEYS', z.string().optional(), {
      option: 'list',
      help: 'tenant:key pairs (comma-separated); unset: open single-tenant mode',
    }),
    apiKeysFile: setting('API_KEYS_FILE', z.string().trim().optional(), {
      option: 'string',
      help: 'a file of tenant:key lines, read at startup',
    }),
  },
  runner: {
    /** Jobs this process runs at once; 0: none. */
    concurrency: setting('WORKER_CONCURRENCY', integer(0, 1000).default(4), {
      option: 'number',
      help: 'jobs this process runs at once (0: API only)',
    }),
    /** Run jobs without opening the HTTP port (worker fleets). */
    workerOnly: setting(
      'WORKER_ONLY',
      z
        .enum(['true', 'false', '1', '0', ''])
        .default('false')
        .transform((value) => value === 'true' || value === '1'),
      { option: 'boolean', help: 'run jobs and open no HTTP port' },
    ),
    // How often an idle runner looks for work when no notification woke it. NOTIFY is only a hint.
    pollIntervalMs: setting('POLL_INTERVAL_MS', integer(10, 600_000).default(2000), {
      option: 'number',
      help: 'how often an idle runner looks for work without a notification, in ms',
    }),
    // Within this long a process that died (or lost the database) has its running jobs recovered by the others.
    leaseMs: setting('JOB_LEASE_MS', integer(3000, 3_600_000).default(30_000), {
      option: 'number',
      help: "within about this long a dead process's running jobs are recovered, in ms",
    }),
    retryBackoffMs: setting('RETRY_BACKOFF_MS', integer(1, 3_600_000).default(1000), {
      option: 'number',
      help: 'base of the backoff between attempts, in ms',
    }),
    abortGraceMs: setting('ABORT_GRACE_MS', integer(0, 600_000).default(5000), {
      option: 'number',
      help: 'how long a handler whose signal fired may take to stop, in ms',
    }),
    shutdownGraceMs: setting('SHUTDOWN_GRACE_MS', integer(0, 3_600_000).default(10_000), {
      option: 'number',
      help: 'on SIGTERM/SIGINT, how long running jobs may take to finish, in ms',
    }),
  },
  maintenance: {
    /** Finished jobs older than this are deleted; 0 keeps them forever. */
    jobRetentionMs: setting(
      'JOB_RETENTION',
      z
        .string()
        .trim()
        .regex(/^\d+(ms|s|m|h|d)?$/, 'must be a duration such as 30d, 12h, 90m, 3600s or 0 (keep forever)')
        .transform(parseDuration)
        .default(30 * 86_400_000),
      { option: 'duration', help: 'finished jobs older than this are deleted (30d, 12h, 90m, 3600s; 0: keep)' },
    ),
    /** Job events (the log that live streams resume from) older than this are deleted. */
    eventLogRetentionMs: setting(
      'EVENT_LOG_RETENTION',
      z
        .string()
        .trim()
        .regex(/^\d+(ms|s|m|h|d)?$/, 'must be a duration such as 1h, 90m, 3600s or 500ms')
        .transform(parseDuration)
        .default(3_600_000),
      { option: 'duration', help: 'job events older than this are deleted (same syntax; 0: keep)' },
    ),
  },
  live: {
    // How often the watched jobs' revisions are compared with what subscribers have: the backstop of NOTIFY.
    recheckMs: setting('LIVE_RECHECK_MS', integer(50, 600_000).default(1000), {
      option: 'number',
      help: 'how often watched jobs are re-read, in ms (the backstop of NOTIFY)',
    }),
    // Subscriptions and awaitJob calls one process holds at once.
    maxSubscriptions: setting('MAX_SUBSCRIPTIONS', integer(1, 1_000_000).default(10_000), {
      option: 'number',
      help: 'subscriptions and awaitJob calls one process holds at once',
    }),
    // Each tenant's share of them, so that one tenant cannot take every slot. Unset: see resolveTenantQuotas.
    /** One tenant's share of maxSubscriptions. */
    maxSubscriptionsPerTenant: setting('MAX_SUBSCRIPTIONS_PER_TENANT', integer(1, 1_000_000).optional(), {
      option: 'number',
      help: 'the same for one tenant',
    }),
  },
  limits: {
    maxBodyBytes: setting('MAX_BODY_BYTES', integer(1024, 64 * 1024 * 1024).default(1024 * 1024), {
      option: 'number',
      help: 'largest request body accepted',
    }),
    // The GraphQL document's own text (the query), checked before it is parsed.
    maxDocumentBytes: setting('MAX_DOCUMENT_BYTES', integer(64, 16 * 1024 * 1024).default(100 * 1024), {
      option: 'number',
      help: 'largest GraphQL document (the query text)',
    }),
    // Requests per tenant: `100/s`, `6000/m`, `100` (per second); unset or `0`: no limit.
    /** Requests one tenant may make to this process: `requests` per `perMs`, in bursts of up to `requests`; null: off. */
    rateLimit: setting(
      'RATE_LIMIT',
      z
        .string()
        .trim()
        .regex(/^\d{1,9}(\/(s|m|h))?$/, 'must be a number of requests per second, minute or hour, such as 100/s, 6000/m or 0 (off)')
        .optional()
        .transform(parseRateLimit),
      { option: 'string', help: 'requests per tenant per process: 100/s, 6000/m, 100000/h (unset or 0: off)' },
    ),
    // A tenant's share of WebSocket connections. Unset: see resolveTenantQuotas.
    /** WebSocket connections one tenant may hold on this process; null: no limit. */
    maxConnectionsPerTenant: setting('MAX_CONNECTIONS_PER_TENANT', integer(1, 1_000_000).optional(), {
      option: 'number',
      help: 'WebSocket connections one tenant holds at once on one process',
    }),
  },
  log: {
    level: setting('LOG_LEVEL', z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'), {
      option: 'string',
      help: 'debug, info, warn, error or silent',
    }),
    // auto: readable lines on a terminal, JSON lines otherwise (a pipe, a file, a log shipper).
    format: setting('LOG_FORMAT', z.enum(['json', 'pretty', 'auto']).default('auto'), {
      option: 'string',
      help: 'json, pretty or auto (pretty on a terminal)',
    }),
  },
  // Read only for the defaults of GRAPHIQL and INTROSPECTION; not part of Config.
  nodeEnv: setting('NODE_ENV', z.string().optional(), {
    option: 'none',
    help: 'production turns GraphiQL and introspection off unless they are set',
  }),
} satisfies Settings;

/** The settings whose value depends on more than one variable. */
function finish(parsed: Parsed<typeof settings>) {
  const { nodeEnv, auth, ...rest } = parsed;
  const apiKeys = parseApiKeys(auth.apiKeys, auth.apiKeysFile);
  const quotas = resolveTenantQuotas(
    rest.live.maxSubscriptions,
    apiKeys.length === 0,
    rest.live.maxSubscriptionsPerTenant,
    rest.limits.maxConnectionsPerTenant,
  );
  return {
    ...rest,
    http: {
      ...rest.http,
      graphiql: rest.http.graphiql ? rest.http.graphiql === 'true' : nodeEnv !== 'production',
      introspection: rest.http.introspection ? rest.http.introspection === 'true' : nodeEnv !== 'production',
      dashboard: rest.http.dashboard !== 'false',
    },
    /** apiKeys empty: open single-tenant mode. */
    auth: { apiKeys },
    live: { ...rest.live, maxSubscriptionsPerTenant: quotas.maxSubscriptionsPerTenant },
    limits: { ...rest.limits, maxConnectionsPerTenant: quotas.maxConnectionsPerTenant },
  };
}

/** The service's settings, grouped by part: `config.http.port`, `config.runner.concurrency`, … */
export type Config = ReturnType<typeof finish>;

export type DatabaseTimeouts = Config['database']['timeouts'];

export type RateLimit = { requests: number; perMs: number };

export class ConfigError extends Error {}

// Defaults of the per-tenant quotas. With API keys, each tenant may hold a quarter of the process's subscriptions
// (at least 100, at most all) and 1000 WebSocket connections, so three busy tenants still leave room for a
// fourth. In open mode there is one tenant: unless set explicitly, it gets the whole process.
const DEFAULT_CONNECTIONS_PER_TENANT = 1000;

function resolveTenantQuotas(
  maxSubscriptions: number,
  openMode: boolean,
  subscriptions: number | undefined,
  connections: number | undefined,
): { maxSubscriptionsPerTenant: number; maxConnectionsPerTenant: number | null } {
  const shared = Math.min(maxSubscriptions, Math.max(Math.floor(maxSubscriptions / 4), 100));
  return {
    maxSubscriptionsPerTenant: Math.min(maxSubscriptions, subscriptions ?? (openMode ? maxSubscriptions : shared)),
    maxConnectionsPerTenant: connections ?? (openMode ? null : DEFAULT_CONNECTIONS_PER_TENANT),
  };
}

const ratePeriodMs: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

function parseRateLimit(text: string | undefined): RateLimit | null {
  const match = /^(\d+)(?:\/(s|m|h))?$/.exec(text ?? '');
  const requests = Number(match?.[1] ?? 0);
  return requests > 0 ? { requests, perMs: ratePeriodMs[match?.[2] ?? 's'] ?? 1000 } : null;
}

/** `tenant:key` entries; a malformed one is a ConfigError naming the variable but never showing a key. */
function parseApiKeys(inline: string | undefined, file: string | undefined): Array<{ tenant: string; key: string }> {
  const sources: Array<[string, string]> = [];
  if (inline?.trim()) sources.push(['API_KEYS', inline]);
  if (file) {
    try {
      sources.push(['API_KEYS_FILE', readFileSync(file, 'utf8')]);
    } catch (error) {
      throw new ConfigError(`invalid configuration: API_KEYS_FILE cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const keys: Array<{ tenant: string; key: string }> = [];
  for (const [name, text] of sources) {
    for (const [index, entry] of text
      .split(/[,\n]/)
      .map((e) => e.trim())
      .entries()) {
      if (entry === '' || entry.startsWith('#')) continue;
      const match = /^([A-Za-z0-9._-]{1,100}):(\S{16,})$/.exec(entry);
      if (!match) {
        throw new ConfigError(
          `invalid configuration: ${name} entry ${index + 1} must be tenant:key (tenant of letters, digits, . _ -; key of at least 16 characters without spaces)`,
        );
      }
      keys.push({ tenant: match[1] as string, key: match[2] as string });
    }
  }
  if (new Set(keys.map((k) => k.key)).size !== keys.length)
    throw new ConfigError('invalid configuration: API_KEYS holds the same key twice');
  return keys;
}

function listOf(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/** Each entry must be `*` or an origin as browsers send it: scheme://host[:port], nothing after. */
function parseCorsOrigins(text: string | undefined): string[] {
  const origins = listOf(text ?? '');
  for (const origin of origins) {
    if (origin === '*') continue;
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {}
    const bare = parsed && parsed.pathname === '/' && !parsed.search && !parsed.hash && !parsed.username && !origin.endsWith('/');
    if (!parsed || !/^https?:$/.test(parsed.protocol) || !bare) {
      throw new ConfigError(
        `invalid configuration: CORS_ORIGINS entry ${JSON.stringify(origin)} must be an origin such as https://app.example.com or *`,
      );
    }
  }
  return origins.map((origin) => (origin === '*' ? origin : new URL(origin).origin));
}

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30d", "12h", "90m", "3600s", "500ms", or a bare number of milliseconds. */
function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text);
  return Number(match?.[1]) * (unitMs[match?.[2] ?? 'ms'] ?? 1);
}

/**
 * Parses the options (startJobql's camelCase settings), falling back to the environment for each one not given:
 * options win. A bad value throws a ConfigError whose one-line message names the variable or the option.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, options: JobqlSettings = {}): Config {
  const byOption = new Map(settingList().map((entry) => [entry.optionName, entry]));
  const values: Record<string, string | undefined> = { ...env };
  const given = new Set<string>();
  for (const [name, value] of Object.entries(options)) {
    const entry = byOption.get(name);
    if (!entry || entry.option === 'none') throw new ConfigError(`invalid configuration: unknown option ${name}`);
    if (value === undefined) continue;
    values[entry.variable] = optionText(value);
    given.add(entry.variable);
  }
  return finish(parseSettings(settings, values, given));
}

/** An option as the text its variable would hold, so that one schema checks both. */
function optionText(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** camelCase of an environment variable's name: WORKER_CONCURRENCY → workerConcurrency. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<S>;
type Leaves<T> = T extends Setting ? T : { [K in keyof T]: Leaves<T[K]> }[keyof T];
type AnySetting = Leaves<typeof settings>;

/** Every setting the environment has, as an option of startJobql: camelCase of the variable (PORT → port). */
export type JobqlSettings = {
  [S in AnySetting as S['option'] extends 'none' ? never : CamelCase<S['variable']>]?: OptionValue<S['option']> | undefined;
};

export function camelCase(variable: string): string {
  return variable.toLowerCase().replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** Every setting in the model's order: its variable, its option name, how it is given, its help line. */
export function settingList(): Array<{ variable: string; optionName: string; option: OptionKind; help: string }> {
  const list: Array<{ variable: string; optionName: string; option: OptionKind; help: string }> = [];
  const walk = (tree: Settings) => {
    for (const node of Object.values(tree)) {
      if (isSetting(node))
        list.push({ variable: node.variable, optionName: camelCase(node.variable), option: node.option, help: node.help });
      else walk(node);
    }
  };
  walk(settings);
  return list;
}

function parseSettings<T extends Settings>(tree: T, env: Record<string, string | undefined>, given: ReadonlySet<string>): Parsed<T> {
  const values: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(tree)) {
    values[key] = isSetting(node) ? parseSetting(node, env, given.has(node.variable)) : parseSettings(node, env, given);
  }
  return values as Parsed<T>;
}

function isSetting(node: Setting | Settings): node is Setting {
  return typeof node.variable === 'string' && node.schema instanceof z.ZodType;
}

function parseSetting({ variable, schema }: Setting, env: Record<string, string | undefined>, fromOption: boolean): unknown {
  const parsed = schema.safeParse(env[variable]);
  if (parsed.success) return parsed.data;
  const got = env[variable];
  // A connection string may carry a password: it is never repeated back.
  const shown = variable === 'DATABASE_URL' ? '' : ` (got ${JSON.stringify(got)})`;
  const name = fromOption ? `option ${camelCase(variable)}` : variable;
  throw new ConfigError(`invalid configuration: ${name} ${parsed.error.issues[0]?.message ?? 'is invalid'}${shown}`);
}
