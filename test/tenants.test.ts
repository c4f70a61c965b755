import { describe, expect, test } from '@jest/globals';
import {
  AwaitJobDocument,
  CancelJobDocument,
  CreateJobDocument,
  GetJobDocument,
  JobsUpdatedDocument,
  type JobsUpdatedSubscription,
  JobUpdatedDocument,
  ListJobsDocument,
  RetryJobDocument,
} from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data, execute, postGraphQL } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { collect, readSseUntilComplete, sseSubscribe, wsClient } from './helpers/live-clients.ts';
import { waitFor } from './helpers/wait.ts';

// API keys and tenants: every read and write path, over HTTP, SSE and graphql-ws, with two tenants' keys.
const ACME = { authorization: 'Bearer acme-key-0123456789abcdef' };
const GLOBEX = { authorization: 'Bearer globex-key-0123456789abcdef' };
const db = useTestDatabase();
const app = useTestApp(db, {
  runner: { concurrency: 2 },
  auth: {
    apiKeys: [
      { tenant: 'acme', key: 'acme-key-0123456789abcdef' },
      { tenant: 'globex', key: 'globex-key-0123456789abcdef' },
    ],
  },
});

function closeCode(url: string, connectionParams?: Record<string, unknown>): Promise<number> {
  return new Promise((resolve) => {
    const client = wsClient(url, connectionParams);
    client.on('closed', (event) => {
      resolve((event as { code: number }).code);
      void client.dispose();
    });
  });
}

describe('without a valid key', () => {
  test('HTTP GraphQL and REST answer 401 UNAUTHENTICATED, and nothing runs', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-key-0123456789abcdef' }, { authorization: 'Basic abc' }];
    for (const headers of attempts) {
      const response = await postGraphQL(app.url, { query: 'mutation { createJob(input: {kind: "echo"}) { id } }' }, headers);
      expect(response.httpStatus).toBe(401);
      expect(response.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const rest = await fetch(`${app.url}/jobs/00000000-0000-4000-8000-000000000000`, { headers });
      expect(rest.status).toBe(401);
    }
    expect(await db.query('SELECT id FROM jobs')).toEqual([]);
  });

  test('SSE answers 401', async () => {
    const { status } = await sseSubscribe(app.url, JobUpdatedDocument, { id: '00000000-0000-4000-8000-000000000000' });
    expect(status).toBe(401);
  });

  test('graphql-ws closes with 4401 without a key and 4403 with a wrong one', async () => {
    expect(await closeCode(app.url)).toBe(4401);
    expect(await closeCode(app.url, { authorization: 'Bearer wrong-key-0123456789abcdef' })).toBe(4403);
  });

  test('/healthz answers without a key', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});

describe("one tenant's jobs are invisible to another", () => {
  test('job, GET /jobs/{id}, jobs, cancelJob, retryJob and awaitJob', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'fail', input: { message: 'acme only' } } }, ACME);
    await waitForJob(app.url, createJob.id, 'FAILED', { headers: ACME });
    expect((await data(app.url, GetJobDocument, { id: createJob.id }, GLOBEX)).job).toBeNull();
    expect((await fetch(`${app.url}/jobs/${createJob.id}`, { headers: GLOBEX })).status).toBe(404);
    expect((await fetch(`${app.url}/jobs/${createJob.id}`, { headers: ACME })).status).toBe(200);
    const globexList = await data(app.url, ListJobsDocument, { first: 100 }, GLOBEX);
    expect(globexList.jobs.edges.map((edge) => edge.node.id)).not.toContain(createJob.id);
    const acmeList = await data(app.url, ListJobsDocument, { first: 100 }, ACME);
    expect(acmeList.jobs.edges.map((edge) => edge.node.id)).toContain(createJob.id);
    const cancel = await execute(app.url, CancelJobDocument, { id: createJob.id }, GLOBEX);
    expect(cancel.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const retry = await execute(app.url, RetryJobDocument, { id: createJob.id }, GLOBEX);
    expect(retry.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await data(app.url, AwaitJobDocument, { id: createJob.id, timeoutMs: 100 }, GLOBEX)).awaitJob).toBeNull();
    // The job is untouched by all that.
    expect((await data(app.url, GetJobDocument, { id: createJob.id }, ACME)).job).toMatchObject({ status: 'FAILED', attempt: 1 });
  });

  test('jobUpdated is NOT_FOUND over graphql-ws and SSE for the other tenant', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, ACME);
    const client = wsClient(app.url, GLOBEX);
    try {
      const stream = collect(client, JobUpdatedDocument, { id: createJob.id });
      const end = await stream.done;
      const errors = 'error' in end ? (end.error as { extensions?: { code?: string } }[]) : stream.results.flatMap((r) => r.errors ?? []);
      expect(errors[0]?.extensions?.code).toBe('NOT_FOUND');
    } finally {
      await client.dispose();
    }
    const sse = await sseSubscribe(app.url, JobUpdatedDocument, { id: createJob.id }, { authorization: GLOBEX.authorization });
    const text = [];
    for await (const event of sse.events) {
      text.push(event.data);
      if (event.event === 'complete') break;
    }
    expect(text.join('')).toContain('NOT_FOUND');
    const own = await sseSubscribe(app.url, JobUpdatedDocument, { id: createJob.id }, { authorization: ACME.authorization });
    const received = await readSseUntilComplete(own.events);
    expect(received.length).toBeGreaterThan(0);
  });

  test("jobsUpdated streams only the subscriber's own tenant's changes", async () => {
    const client = wsClient(app.url, GLOBEX);
    try {
      const seen: string[] = [];
      const stream = collect(client, JobsUpdatedDocument, {}, (result) => {
        const job = (result.data as JobsUpdatedSubscription | undefined)?.jobsUpdated;
        if (job) seen.push(job.id);
      });
      await waitFor('the stream to be live', async () => {
        const probe = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, GLOBEX);
        await new Promise((resolve) => setTimeout(resolve, 200));
        return seen.includes(probe.createJob.id) ? true : undefined;
      });
      const acme = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, ACME);
      const globex = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, GLOBEX);
      await waitFor('globex to see its own job', async () => (seen.includes(globex.createJob.id) ? true : undefined));
      await waitForJob(app.url, acme.createJob.id, 'COMPLETED', { headers: ACME });
      stream.unsubscribe();
      expect(seen).not.toContain(acme.createJob.id);
    } finally {
      await client.dispose();
    }
  });

  test('idempotency keys are per tenant', async () => {
    const a = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { n: 1 }, idempotencyKey: 'shared-key' } }, ACME);
    const g = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { n: 2 }, idempotencyKey: 'shared-key' } }, GLOBEX);
    expect(g.createJob.id).not.toBe(a.createJob.id);
    const again = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { n: 1 }, idempotencyKey: 'shared-key' } }, ACME);
    expect(again.createJob.id).toBe(a.createJob.id);
  });
});

describe('API_KEYS', () => {
  test('a malformed entry stops startup with an error naming the variable and never showing a key', async () => {
    const { ConfigError, loadConfig } = await import('../src/config.ts');
    expect(() => loadConfig({ API_KEYS: 'acme:short' })).toThrow(ConfigError);
    expect(() => loadConfig({ API_KEYS: 'acme:short' })).toThrow(/API_KEYS entry 1/);
    expect(() => loadConfig({ API_KEYS: 'acme:secret-value-that-is-long, broken' })).not.toThrow(/secret-value/);
    expect(loadConfig({ API_KEYS: 'a:0123456789abcdef,b:fedcba9876543210' }).auth.apiKeys).toEqual([
      { tenant: 'a', key: '0123456789abcdef' },
      { tenant: 'b', key: 'fedcba9876543210' },
    ]);
  });
});
