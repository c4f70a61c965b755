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

const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .trim()
    .optional()
    .transform((value) => (value === '' ? undefined : value))
    .refine((value) => value === undefined || /^postgres(ql)?:\/\//.test(value), 'must be a postgres:// URL'),
  // Every query, connection and startup is bounded, so a database that hangs (rather than refusing) cannot hang
  // requests, the runner or startup with it.
  DATABASE_STATEMENT_TIMEOUT_MS: integer(100, 3_600_000).default(30_000),
  DATABASE_CONNECT_TIMEOUT_MS: integer(100, 600_000).default(5000),
  DATABASE_STARTUP_TIMEOUT_MS: integer(0, 86_400_000).default(60_000),
  PORT: integer(0, 65535).default(4000),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  // A second port with only /healthz, /readyz and /metrics: for worker-only processes, which have no API
  // port, and for keeping metrics off the public port. Unset: none.
  METRICS_PORT: integer(0, 65535).optional(),
  WORKER_CONCURRENCY: integer(0, 1000).default(4),
  SHUTDOWN_GRACE_MS: integer(0, 3_600_000).default(10_000),
  EMBEDDED_POSTGRES_DIR: z.string().trim().min(1).default('.data/postgres'),
  EMBEDDED_POSTGRES_PORT: integer(1, 65535).default(54329),
  // How often an idle runner looks for work when no notification woke it. NOTIFY is only a hint.
  POLL_INTERVAL_MS: integer(10, 600_000).default(2000),
  // Subscriptions and awaitJob calls one process holds at once.
  MAX_SUBSCRIPTIONS: integer(1, 1_000_000).default(10_000),
  // Each tenant's share of them, and of WebSocket connections, so that one tenant cannot take every slot.
  // Unset: see resolveTenantQuotas.
  MAX_SUBSCRIPTIONS_PER_TENANT: integer(1, 1_000_000).optional(),
  MAX_CONNECTIONS_PER_TENANT: integer(1, 1_000_000).optional(),
  // Requests per tenant: `100/s`, `6000/m`, `100` (per second); unset or `0`: no limit.
  RATE_LIMIT: z
    .string()
    .trim()
    .regex(/^\d{1,9}(\/(s|m|h))?$/, 'must be a number of requests per second, minute or hour, such as 100/s, 6000/m or 0 (off)')
    .optional(),
  // How often the watched jobs' revisions are compared with what subscribers have: the backstop of NOTIFY.
  LIVE_RECHECK_MS: integer(50, 600_000).default(1000),
  // Within this long a process that died (or lost the database) has its running jobs recovered by the others.
  JOB_LEASE_MS: integer(3000, 3_600_000).default(30_000),
  RETRY_BACKOFF_MS: integer(1, 3_600_000).default(1000),
  ABORT_GRACE_MS: integer(0, 600_000).default(5000),
  JOB_RETENTION: z
    .string()
    .trim()
    .regex(/^\d+(ms|s|m|h|d)?$/, 'must be a duration such as 30d, 12h, 90m, 3600s or 0 (keep forever)')
    .transform(parseDuration)
    .default(30 * 86_400_000),
  WORKER_ONLY: z.enum(['true', 'false', '1', '0', '']).default('false'),
  // `tenant:key` pairs separated by commas or new lines; API_KEYS_FILE names a file of them, one a line.
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().trim().optional(),
  MAX_BODY_BYTES: integer(1024, 64 * 1024 * 1024).default(1024 * 1024),
  // The GraphQL document's own text (the query), checked before it is parsed.
  MAX_DOCUMENT_BYTES: integer(64, 16 * 1024 * 1024).default(100 * 1024),
  // Browser origins (scheme://host[:port]) allowed to call the API cross-origin, comma-separated; `*`: any.
  // Unset: none (same-origin pages and non-browser clients only).
  CORS_ORIGINS: z.string().optional(),
  // Host names (without port) the API answers to besides the loopback names and HOST, comma-separated;
  // `*`: any. Unset: none more in open mode; any with API_KEYS.
  ALLOWED_HOSTS: z.string().optional(),
  // Off by default in production (NODE_ENV=production), on otherwise.
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  INTROSPECTION: z.enum(['true', 'false']).optional(),
  NODE_ENV: z.string().optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // auto: readable lines on a terminal, JSON lines otherwise (a pipe, a file, a log shipper).
  LOG_FORMAT: z.enum(['json', 'pretty', 'auto']).default('auto'),
});

export type Config = {
  /** Connection string; undefined means: start the embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** Longest a statement may run (server side, and client side when the server does not answer) and a connection may take to open. */
  databaseTimeouts: DatabaseTimeouts;
  /** How long startup waits for the database to answer, retrying, before it gives up. */
  databaseStartupTimeoutMs: number;
  port: number;
  host: string;
  /** Port of the probes-and-metrics server; null: none (the API port serves them anyway). */
  metricsPort: number | null;
  workerConcurrency: number;
  shutdownGraceMs: number;
  embeddedPostgresDir: string;
  embeddedPostgresPort: number;
  pollIntervalMs: number;
  maxSubscriptions: number;
  /** One tenant's share of maxSubscriptions. */
  maxSubscriptionsPerTenant: number;
  /** WebSocket connections one tenant may hold on this process; null: no limit. */
  maxConnectionsPerTenant: number | null;
  /** Requests one tenant may make to this process: `requests` per `perMs`, in bursts of up to `requests`; null: off. */
  rateLimit: RateLimit | null;
  jobLeaseMs: number;
  retryBackoffMs: number;
  abortGraceMs: number;
  /** Finished jobs older than this are deleted; 0 keeps them forever. */
  jobRetentionMs: number;
  /** Run jobs without opening the HTTP port (worker fleets). */
  workerOnly: boolean;
  maxBodyBytes: number;
  maxDocumentBytes: number;
  /** Origins allowed cross-origin; ['*'] for any; empty for none. */
  corsOrigins: string[];
  /** Host names accepted in the Host header besides loopback and HOST; ['*'] for any; null: the mode's default. */
  allowedHosts: string[] | null;
  graphiql: boolean;
  introspection: boolean;
  /** Empty: open single-tenant mode. */
  apiKeys: Array<{ tenant: string; key: string }>;
  liveRecheckMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  logFormat: 'json' | 'pretty' | 'auto';
};

export type DatabaseTimeouts = { statementMs: number; connectMs: number };

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

/** Parses the environment; a bad value throws a ConfigError whose one-line message names the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'environment');
    const got = env[name];
    const shown = name === 'DATABASE_URL' ? '' : ` (got ${JSON.stringify(got)})`;
    throw new ConfigError(`invalid configuration: ${name} ${issue?.message ?? 'is invalid'}${shown}`);
  }
  const e = parsed.data;
  const apiKeys = parseApiKeys(e.API_KEYS, e.API_KEYS_FILE);
  return {
    databaseUrl: e.DATABASE_URL,
    databaseTimeouts: { statementMs: e.DATABASE_STATEMENT_TIMEOUT_MS, connectMs: e.DATABASE_CONNECT_TIMEOUT_MS },
    databaseStartupTimeoutMs: e.DATABASE_STARTUP_TIMEOUT_MS,
    port: e.PORT,
    metricsPort: e.METRICS_PORT ?? null,
    host: e.HOST,
    workerConcurrency: e.WORKER_CONCURRENCY,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    embeddedPostgresDir: e.EMBEDDED_POSTGRES_DIR,
    embeddedPostgresPort: e.EMBEDDED_POSTGRES_PORT,
    pollIntervalMs: e.POLL_INTERVAL_MS,
    maxSubscriptions: e.MAX_SUBSCRIPTIONS,
    ...resolveTenantQuotas(e.MAX_SUBSCRIPTIONS, apiKeys.length === 0, e.MAX_SUBSCRIPTIONS_PER_TENANT, e.MAX_CONNECTIONS_PER_TENANT),
    rateLimit: parseRateLimit(e.RATE_LIMIT),
    jobLeaseMs: e.JOB_LEASE_MS,
    retryBackoffMs: e.RETRY_BACKOFF_MS,
    abortGraceMs: e.ABORT_GRACE_MS,
    jobRetentionMs: e.JOB_RETENTION,
    workerOnly: e.WORKER_ONLY === 'true' || e.WORKER_ONLY === '1',
    apiKeys,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxDocumentBytes: e.MAX_DOCUMENT_BYTES,
    corsOrigins: parseCorsOrigins(e.CORS_ORIGINS),
    allowedHosts: e.ALLOWED_HOSTS?.trim() ? listOf(e.ALLOWED_HOSTS).map((h) => h.toLowerCase()) : null,
    graphiql: e.GRAPHIQL ? e.GRAPHIQL === 'true' : e.NODE_ENV !== 'production',
    introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
    liveRecheckMs: e.LIVE_RECHECK_MS,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
  };
}
