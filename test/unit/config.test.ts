import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.ts';

// loadConfig is pure (the environment in, a Config out): checked here without a database or a server.

describe('defaults', () => {
  test('an empty environment gives the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      database: { url: undefined, timeouts: { statementMs: 30_000, connectMs: 5000 }, startupTimeoutMs: 60_000 },
      http: {
        port: 4000,
        host: '127.0.0.1',
        metricsPort: null,
        corsOrigins: [],
        allowedHosts: null,
        graphiql: true,
        introspection: true,
        dashboard: true,
      },
      runner: {
        concurrency: 4,
        shutdownGraceMs: 10_000,
        pollIntervalMs: 2000,
        leaseMs: 30_000,
        retryBackoffMs: 1000,
        abortGraceMs: 5000,
        workerOnly: false,
      },
      live: { maxSubscriptions: 10_000 },
      maintenance: { jobRetentionMs: 30 * 86_400_000 },
      auth: { apiKeys: [] },
      limits: { maxBodyBytes: 1024 * 1024, maxDocumentBytes: 100 * 1024, rateLimit: null },
      log: { level: 'info', format: 'auto' },
    });
  });

  test('in open mode one tenant may use the whole process; with API keys each gets a share', () => {
    const open = loadConfig({ MAX_SUBSCRIPTIONS: '1000' });
    expect([open.live.maxSubscriptionsPerTenant, open.limits.maxConnectionsPerTenant]).toEqual([1000, null]);
    const keyed = loadConfig({ MAX_SUBSCRIPTIONS: '1000', API_KEYS: 'acme:acme-key-0123456789abcdef' });
    expect([keyed.live.maxSubscriptionsPerTenant, keyed.limits.maxConnectionsPerTenant]).toEqual([250, 1000]);
    // A quarter, but at least 100 and never more than the process has.
    expect(loadConfig({ MAX_SUBSCRIPTIONS: '50', API_KEYS: 'acme:acme-key-0123456789abcdef' }).live.maxSubscriptionsPerTenant).toBe(50);
  });

  test('the dashboard is on in production too, unless DASHBOARD=false', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).http.dashboard).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', DASHBOARD: 'false' }).http.dashboard).toBe(false);
    expect(loadConfig({}, { dashboard: false }).http.dashboard).toBe(false);
    expect(() => loadConfig({ DASHBOARD: 'off' })).toThrow(ConfigError);
  });

  test('NODE_ENV=production turns GraphiQL and introspection off unless they are set', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).http).toMatchObject({ graphiql: false, introspection: false });
    expect(loadConfig({ NODE_ENV: 'production', GRAPHIQL: 'true', INTROSPECTION: 'true' }).http).toMatchObject({
      graphiql: true,
      introspection: true,
    });
  });
});

describe('values are parsed', () => {
  test.each([
    ['30d', 30 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['90m', 90 * 60_000],
    ['3600s', 3_600_000],
    ['500ms', 500],
    ['2500', 2500],
    ['0', 0],
  ])('JOB_RETENTION=%s is %d ms', (text, ms) => {
    expect(loadConfig({ JOB_RETENTION: text }).maintenance.jobRetentionMs).toBe(ms);
  });

  test.each([
    ['100/s', { requests: 100, perMs: 1000 }],
    ['6000/m', { requests: 6000, perMs: 60_000 }],
    ['10/h', { requests: 10, perMs: 3_600_000 }],
    ['7', { requests: 7, perMs: 1000 }],
    ['0', null],
  ])('RATE_LIMIT=%s', (text, limit) => {
    expect(loadConfig({ RATE_LIMIT: text }).limits.rateLimit).toEqual(limit);
  });

  test('numbers are trimmed; WORKER_ONLY takes true/1; lists split on commas and spaces', () => {
    const trimmed = loadConfig({ PORT: ' 8080 ', WORKER_CONCURRENCY: '0' });
    expect([trimmed.http.port, trimmed.runner.concurrency]).toEqual([8080, 0]);
    expect(loadConfig({ WORKER_ONLY: '1' }).runner.workerOnly).toBe(true);
    expect(loadConfig({ WORKER_ONLY: 'true' }).runner.workerOnly).toBe(true);
    expect(loadConfig({ WORKER_ONLY: '0' }).runner.workerOnly).toBe(false);
    expect(loadConfig({ ALLOWED_HOSTS: 'Jobs.Example.com, localhost' }).http.allowedHosts).toEqual(['jobs.example.com', 'localhost']);
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example:8443 *' }).http.corsOrigins).toEqual(['https://app.example:8443', '*']);
    expect(loadConfig({ DATABASE_URL: '  ' }).database.url).toBeUndefined();
  });

  test('API_KEYS and API_KEYS_FILE are read together; comments and blank lines are skipped', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'jobql-config-'));
    try {
      const file = path.join(dir, 'keys');
      writeFileSync(file, '# tenants\nglobex:globex-key-0123456789abcdef\n\n');
      expect(loadConfig({ API_KEYS: 'acme:acme-key-0123456789abcdef', API_KEYS_FILE: file }).auth.apiKeys).toEqual([
        { tenant: 'acme', key: 'acme-key-0123456789abcdef' },
        { tenant: 'globex', key: 'globex-key-0123456789abcdef' },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a bad value is a one-line ConfigError that names its variable', () => {
  const refused = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
  };

  test.each([
    ['DATABASE_URL', 'mysql://localhost/jobs'],
    ['DATABASE_STATEMENT_TIMEOUT_MS', '99'],
    ['DATABASE_CONNECT_TIMEOUT_MS', 'soon'],
    ['DATABASE_STARTUP_TIMEOUT_MS', '-1'],
    ['PORT', '65536'],
    ['PORT', '80.5'],
    ['HOST', '  '],
    ['METRICS_PORT', 'x'],
    ['WORKER_CONCURRENCY', '1001'],
    ['SHUTDOWN_GRACE_MS', '1e3'],
    ['EMBEDDED_POSTGRES_PORT', '0'],
    ['POLL_INTERVAL_MS', '9'],
    ['MAX_SUBSCRIPTIONS', '0'],
    ['MAX_SUBSCRIPTIONS_PER_TENANT', '0'],
    ['MAX_CONNECTIONS_PER_TENANT', 'many'],
    ['RATE_LIMIT', '100/d'],
    ['LIVE_RECHECK_MS', '49'],
    ['JOB_LEASE_MS', '2999'],
    ['RETRY_BACKOFF_MS', '0'],
    ['ABORT_GRACE_MS', '600001'],
    ['JOB_RETENTION', '30 days'],
    ['WORKER_ONLY', 'yes'],
    ['MAX_BODY_BYTES', '1023'],
    ['MAX_DOCUMENT_BYTES', '63'],
    ['GRAPHIQL', 'on'],
    ['INTROSPECTION', '1'],
    ['LOG_LEVEL', 'verbose'],
    ['LOG_FORMAT', 'xml'],
    ['API_KEYS', 'acme:short'],
    ['API_KEYS_FILE', '/nonexistent/jobql-keys'],
    ['CORS_ORIGINS', 'https://app.example/path'],
  ])('%s=%j', (name, value) => {
    const message = refused({ [name]: value });
    expect(message).toMatch(new RegExp(`^invalid configuration: ${name} `));
    expect(message).not.toContain('\n');
  });

  test('the value is shown, except for DATABASE_URL and API keys, which may hold secrets', () => {
    expect(refused({ PORT: 'eighty' })).toContain('(got "eighty")');
    expect(refused({ DATABASE_URL: 'mysql://user:secret@host/db' })).not.toContain('secret');
    expect(refused({ API_KEYS: 'acme:secret key with spaces' })).not.toContain('secret');
    expect(refused({ API_KEYS: 'acme:acme-key-0123456789abcdef,globex:acme-key-0123456789abcdef' })).toMatch(/same key twice/);
  });
});

describe('options (startJobql) and the environment', () => {
  test('an option wins over its variable; a variable without an option is the fallback', () => {
    const config = loadConfig({ PORT: '5000', WORKER_CONCURRENCY: '3' }, { port: 6000 });
    expect([config.http.port, config.runner.concurrency]).toEqual([6000, 3]);
  });

  test('options take natural values: numbers, booleans, lists, durations in ms or as text', () => {
    const config = loadConfig(
      {},
      {
        workerOnly: true,
        graphiql: false,
        apiKeys: ['acme:acme-key-0123456789abcdef'],
        corsOrigins: ['https://app.example'],
        jobRetention: '12h',
        eventLogRetention: 90_000,
      },
    );
    expect(config.runner.workerOnly).toBe(true);
    expect(config.http).toMatchObject({ graphiql: false, corsOrigins: ['https://app.example'] });
    expect(config.auth.apiKeys).toEqual([{ tenant: 'acme', key: 'acme-key-0123456789abcdef' }]);
    expect(config.maintenance).toEqual({ jobRetentionMs: 12 * 3_600_000, eventLogRetentionMs: 90_000 });
  });

  test('an undefined option falls back to the environment (databaseUrl: process.env.DATABASE_URL)', () => {
    expect(loadConfig({ PORT: '5000' }, { port: undefined }).http.port).toBe(5000);
  });

  test('a bad option is a ConfigError naming the option, not the variable; an unknown one is named too', () => {
    expect(() => loadConfig({}, { workerConcurrency: -1 })).toThrow(/^invalid configuration: option workerConcurrency /);
    expect(() => loadConfig({}, { prot: 4000 } as never)).toThrow(new ConfigError('invalid configuration: unknown option prot'));
    // NODE_ENV is read from the environment only.
    expect(() => loadConfig({}, { nodeEnv: 'production' } as never)).toThrow(/unknown option nodeEnv/);
  });
});
