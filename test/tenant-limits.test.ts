import { describe, expect, test } from '@jest/globals';
import type { Client } from 'graphql-ws';
import { ConfigError, loadConfig } from '../src/config.ts';
import { AwaitJobDocument, CreateJobDocument, GetJobDocument, JobUpdatedDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data, execute } from './helpers/graphql.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { waitFor } from './helpers/wait.ts';

// Fair shares between tenants: one tenant filling its quota of subscriptions or connections, or sending requests
// past its rate, leaves the others untouched.
const ACME_KEY = 'acme-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-key-0123456789abcdef';
const ACME = { authorization: `Bearer ${ACME_KEY}` };
const GLOBEX = { authorization: `Bearer ${GLOBEX_KEY}` };
const apiKeys = [
  { tenant: 'acme', key: ACME_KEY },
  { tenant: 'globex', key: GLOBEX_KEY },
];

const db = useTestDatabase();
const clients: Client[] = [];
db.beforeDrop(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
});

function openClient(url: string, headers: { authorization: string }): Client {
  const client = wsClient(url, headers);
  clients.push(client);
  return client;
}

/** The first result of a subscription: its first event, or the errors it failed with. */
async function firstOutcome(client: Client, id: string): Promise<{ status?: string; code?: string }> {
  let resolveFirst: (value: { status?: string; code?: string }) => void = () => {};
  const first = new Promise<{ status?: string; code?: string }>((resolve) => {
    resolveFirst = resolve;
  });
  const stream = collect(client, JobUpdatedDocument, { id }, (result) =>
    resolveFirst(result.data ? { status: result.data.jobUpdated.status } : { code: String(result.errors?.[0]?.extensions?.code) }),
  );
  void stream.done.then((end) => {
    const errors = 'error' in end ? (end.error as Array<{ extensions?: { code?: string } }>) : [];
    resolveFirst({ code: Array.isArray(errors) ? errors[0]?.extensions?.code : String(end) });
  });
  return first;
}

describe('subscription and connection quotas', () => {
  // No runner: jobs stay QUEUED, so their subscriptions stay open.
  const app = useTestApp(db, {
    runner: { concurrency: 0 },
    auth: { apiKeys },
    live: { maxSubscriptions: 12, maxSubscriptionsPerTenant: 8 },
    limits: { maxConnectionsPerTenant: 2 },
  });

  test('a tenant that fills its subscription quota is refused, and another tenant still subscribes and awaits', async () => {
    const { createJob: acmeJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, ACME);
    const { createJob: globexJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, GLOBEX);
    const acme = openClient(app.url, ACME);
    // Acme asks for every slot the process has; it gets its share and no more.
    const outcomes = [];
    for (let i = 0; i < 12; i++) outcomes.push(await firstOutcome(acme, acmeJob.id));
    expect(outcomes.filter((o) => o.status === 'QUEUED')).toHaveLength(8);
    expect(outcomes.slice(8)).toEqual(Array(4).fill({ code: 'LIMIT_EXCEEDED' }));
    const acmeAwait = await execute(app.url, AwaitJobDocument, { id: acmeJob.id, timeoutMs: 50 }, ACME);
    expect(acmeAwait.errors?.[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');

    const globex = openClient(app.url, GLOBEX);
    expect(await firstOutcome(globex, globexJob.id)).toEqual({ status: 'QUEUED' });
    const globexAwait = await data(app.url, AwaitJobDocument, { id: globexJob.id, timeoutMs: 50 }, GLOBEX);
    expect(globexAwait.awaitJob?.status).toBe('QUEUED');
  });

  test('a tenant past its WebSocket connection quota is closed with 1013, and another tenant still connects', async () => {
    const closeCode = (client: Client) =>
      new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    const connected = (client: Client) => new Promise<void>((resolve) => client.on('connected', () => resolve()));
    // Acme already holds one connection from the test above; one more fills its quota of two.
    const second = openClient(app.url, ACME);
    await connected(second);
    const third = openClient(app.url, ACME);
    expect(await Promise.race([connected(third).then(() => 'connected'), closeCode(third)])).toBe(1013);
    const globex = openClient(app.url, GLOBEX);
    await connected(globex);
    // A closed connection gives its place back.
    await second.dispose();
    await waitFor('acme to connect again', async () => {
      const again = openClient(app.url, ACME);
      const outcome = await Promise.race([connected(again).then(() => 'connected'), closeCode(again)]);
      return outcome === 'connected' ? true : undefined;
    });
  });
});

describe('rate limit', () => {
  const app = useTestApp(db, { runner: { concurrency: 0 }, auth: { apiKeys }, limits: { rateLimit: { requests: 3, perMs: 60_000 } } });

  test('past its rate a tenant gets 429 RATE_LIMITED with Retry-After on GraphQL, REST and graphql-ws; another tenant does not', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, ACME);
    const { createdAt } = (
      await db.query<{ createdAt: Date }>('SELECT created_at AS "createdAt" FROM jobs WHERE id = $1', [createJob.id])
    )[0] as {
      createdAt: Date;
    };
    await data(app.url, GetJobDocument, { id: createJob.id }, ACME);
    expect((await fetch(`${app.url}/jobs/${createJob.id}`, { headers: ACME })).status).toBe(200);

    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...ACME },
      body: JSON.stringify({ query: 'mutation { createJob(input: {kind: "echo"}) { id } }' }),
    });
    expect(response.status).toBe(429);
    const retryAfter = Number(response.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0]?.extensions.code).toBe('RATE_LIMITED');

    const rest = await fetch(`${app.url}/jobs/${createJob.id}`, { headers: ACME });
    expect(rest.status).toBe(429);
    expect(rest.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');

    expect(await firstOutcome(openClient(app.url, ACME), createJob.id)).toEqual({ code: 'RATE_LIMITED' });
    // The refused createJob never reached a resolver: acme has the one job it created before.
    expect(
      await db.query('SELECT id FROM jobs WHERE tenant = $1 AND id <> $2 AND created_at >= $3', ['acme', createJob.id, createdAt]),
    ).toEqual([]);

    const { createJob: globexJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, GLOBEX);
    expect((await fetch(`${app.url}/jobs/${globexJob.id}`, { headers: GLOBEX })).status).toBe(200);
    expect(await firstOutcome(openClient(app.url, GLOBEX), globexJob.id)).toEqual({ status: 'QUEUED' });
  });
});

describe('configuration', () => {
  const keys = { API_KEYS: `acme:${ACME_KEY},globex:${GLOBEX_KEY}` };

  test('with API keys each tenant gets a quarter of MAX_SUBSCRIPTIONS (at least 100, at most all) and 1000 connections by default', () => {
    expect(loadConfig({ ...keys }).live.maxSubscriptionsPerTenant).toBe(2500);
    expect(loadConfig({ ...keys, MAX_SUBSCRIPTIONS: '300' }).live.maxSubscriptionsPerTenant).toBe(100);
    expect(loadConfig({ ...keys, MAX_SUBSCRIPTIONS: '50' }).live.maxSubscriptionsPerTenant).toBe(50);
    expect(loadConfig({ ...keys, MAX_SUBSCRIPTIONS_PER_TENANT: '7' }).live.maxSubscriptionsPerTenant).toBe(7);
    expect(loadConfig({ ...keys }).limits.maxConnectionsPerTenant).toBe(1000);
  });

  test('in open mode the one tenant gets the whole process unless the quotas are set', () => {
    expect(loadConfig({}).live.maxSubscriptionsPerTenant).toBe(10_000);
    expect(loadConfig({}).limits.maxConnectionsPerTenant).toBeNull();
    expect(loadConfig({ MAX_SUBSCRIPTIONS_PER_TENANT: '5', MAX_CONNECTIONS_PER_TENANT: '3' })).toMatchObject({
      live: { maxSubscriptionsPerTenant: 5 },
      limits: { maxConnectionsPerTenant: 3 },
    });
  });

  test('RATE_LIMIT is requests per second, minute or hour; unset or 0 is off; anything else names the variable', () => {
    expect(loadConfig({}).limits.rateLimit).toBeNull();
    expect(loadConfig({ RATE_LIMIT: '0' }).limits.rateLimit).toBeNull();
    expect(loadConfig({ RATE_LIMIT: '100' }).limits.rateLimit).toEqual({ requests: 100, perMs: 1000 });
    expect(loadConfig({ RATE_LIMIT: '100/s' }).limits.rateLimit).toEqual({ requests: 100, perMs: 1000 });
    expect(loadConfig({ RATE_LIMIT: '6000/m' }).limits.rateLimit).toEqual({ requests: 6000, perMs: 60_000 });
    expect(() => loadConfig({ RATE_LIMIT: '10 per second' })).toThrow(ConfigError);
    expect(() => loadConfig({ RATE_LIMIT: '10/d' })).toThrow(/RATE_LIMIT/);
  });
});
