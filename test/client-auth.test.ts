import { afterAll, describe, expect, test } from '@jest/globals';
import { createJobqlClient, type JobqlClient } from '../src/client/index.ts';
import { useTestApp } from './helpers/app.ts';
import { drain, rejection } from './helpers/client-results.ts';
import { useTestDatabase } from './helpers/database.ts';

// jobql/client with API keys: the key reaches the server over HTTP, SSE and graphql-ws; a missing or wrong key
// is UNAUTHENTICATED on every path, and a watch gives up at once instead of reconnecting to the same refusal.
const ACME_KEY = 'acme-key-0123456789abcdef';
const db = useTestDatabase();
const app = useTestApp(db, {
  auth: {
    apiKeys: [
      { tenant: 'acme', key: ACME_KEY },
      { tenant: 'globex', key: 'globex-key-0123456789abcdef' },
    ],
  },
});
const clients: JobqlClient[] = [];

afterAll(() => {
  for (const client of clients.splice(0)) client.dispose();
});

function client(options: { apiKey?: string; transport?: 'ws' | 'sse' }): JobqlClient {
  const created = createJobqlClient({ url: app.url, ...options });
  clients.push(created);
  return created;
}

test("a tenant's key reads its own jobs; another tenant's key does not see them", async () => {
  const acme = client({ apiKey: ACME_KEY });
  const job = await acme.createJob({ kind: 'echo', input: { tenant: 'acme' } });
  expect((await acme.getJob(job.id))?.id).toBe(job.id);
  expect(await client({ apiKey: 'globex-key-0123456789abcdef' }).getJob(job.id)).toBeNull();
});

test('a missing or wrong key is UNAUTHENTICATED over HTTP', async () => {
  expect((await rejection(client({}).getJob(crypto.randomUUID()))).code).toBe('UNAUTHENTICATED');
  expect((await rejection(client({ apiKey: 'wrong-key-0123456789abcdef' }).createJob({ kind: 'echo' }))).code).toBe('UNAUTHENTICATED');
});

describe.each(['ws', 'sse'] as const)('over %s', (transport) => {
  test('a watch with the key follows the job to its final state', async () => {
    const acme = client({ apiKey: ACME_KEY, transport });
    const job = await acme.createJob({ kind: 'sleep', input: { ms: 200 } });
    expect((await drain(acme.watchJob(job.id))).at(-1)).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 200 } });
  });

  test.each([
    ['no key', undefined],
    ['a wrong key', 'wrong-key-0123456789abcdef'],
  ])('a watch with %s is UNAUTHENTICATED at once, without reconnecting', async (_, apiKey) => {
    const job = await client({ apiKey: ACME_KEY }).createJob({
      kind: 'echo',
      input: {},
      runAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const reconnects: unknown[] = [];
    const error = await rejection(
      drain(client({ apiKey, transport }).watchJob(job.id, { onReconnect: (event) => reconnects.push(event) })),
    );
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(reconnects).toEqual([]);
  });
});
