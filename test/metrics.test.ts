import { beforeAll, describe, expect, test } from '@jest/globals';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { demoKinds } from '../src/kinds/demo.ts';
import {
  CancelJobDocument,
  CreateJobDocument,
  type CreateJobInput,
  GetJobDocument,
  JobUpdatedDocument,
  RetryJobDocument,
} from './generated/graphql.ts';
import { startTestApp, useTestApp } from './helpers/app.ts';
import { createTestDatabase, insertJob, useTestDatabase } from './helpers/database.ts';
import { data, execute, postGraphQL } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { type Scrape, scrape } from './helpers/metrics.ts';
import { waitFor } from './helpers/wait.ts';

// GET /metrics on a real server: each metric moves by exactly what the jobs and requests did.
const KEY = 'metrics-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const db = useTestDatabase();
let orphanId: string;

beforeAll(async () => {
  // A job left running by a process that is gone (no session holds worker 4242's lock): the startup
  // recovery ends it, and the metrics must count that.
  orphanId = await insertJob(db, { tenant: 'acme', status: 'running', attempt: 1, worker_id: 4242, started_at: new Date() });
});

// With API keys the metrics are served on METRICS_PORT only.
const app = useTestApp(db, {
  runner: { concurrency: 4, retryBackoffMs: 10 },
  auth: { apiKeys: [{ tenant: 'acme', key: KEY }] },
  http: { metricsPort: 0 },
});

const create = async (input: CreateJobInput) => (await data(app.url, CreateJobDocument, { input }, AUTH)).createJob;
const metrics = () => scrape(app.metricsUrl ?? '');

/** How much each named sample grew between two scrapes. */
const grew = (before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}) =>
  after.value(name, labels) - before.value(name, labels);

test('with API keys, GET /metrics is served on METRICS_PORT only, without a key, in the Prometheus text format, with no tenant data', async () => {
  // On the port tenants reach it is not there, with a key or without: it counts every tenant's jobs.
  for (const headers of [{}, AUTH]) {
    const onApi = await fetch(`${app.url}/metrics`, { headers });
    expect(onApi.status).toBe(404);
    expect(await onApi.text()).not.toContain('jobql_');
  }
  expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  const response = await fetch(`${app.metricsUrl}/metrics`);
  const text = await response.text();
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(text).toContain('# TYPE jobql_jobs_created_total counter');
  expect(text).toContain('# TYPE jobql_job_run_seconds histogram');
  // The process's own metrics come with it.
  expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
  expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
  expect(text).not.toContain(KEY);
});

test('the running job of a dead process, ended by recovery at startup, counts as failed with INTERRUPTED', async () => {
  // Recovery runs before the port opens, so the job is already ended.
  const { job } = await data(app.url, GetJobDocument, { id: orphanId }, AUTH);
  expect(job).toMatchObject({ status: 'FAILED', error: { code: 'INTERRUPTED' } });
  const now = await metrics();
  expect(now.value('jobql_jobs_finished_total', { kind: 'echo', status: 'failed' })).toBe(1);
  expect(now.value('jobql_job_attempts_failed_total', { kind: 'echo', code: 'INTERRUPTED' })).toBe(1);
});

test('job counters and histograms move by exactly the jobs that complete, fail and are retried', async () => {
  const before = await metrics();
  const jobs = [
    ...(await Promise.all([1, 2, 3].map((n) => create({ kind: 'echo', input: { n } })))),
    ...(await Promise.all([1, 2].map(() => create({ kind: 'fail', input: { message: 'no' } })))),
    await create({ kind: 'flaky', input: { failures: 1 }, maxAttempts: 2 }),
  ];
  for (const job of jobs) {
    await waitForJob(app.url, job.id, ['COMPLETED', 'FAILED'], { headers: AUTH });
  }
  // The counters are updated right after the row is written; the scrape may come a moment later.
  const after = await waitFor('the flaky job to be counted', async () => {
    const now = await metrics();
    return grew(before, now, 'jobql_jobs_finished_total', { kind: 'flaky', status: 'completed' }) === 1 ? now : undefined;
  });

  expect(grew(before, after, 'jobql_jobs_created_total', { kind: 'echo' })).toBe(3);
  expect(grew(before, after, 'jobql_jobs_created_total', { kind: 'fail' })).toBe(2);
  expect(grew(before, after, 'jobql_jobs_created_total', { kind: 'flaky' })).toBe(1);

  expect(grew(before, after, 'jobql_job_attempts_started_total', { kind: 'echo' })).toBe(3);
  expect(grew(before, after, 'jobql_job_attempts_started_total', { kind: 'fail' })).toBe(2);
  expect(grew(before, after, 'jobql_job_attempts_started_total', { kind: 'flaky' })).toBe(2);

  expect(grew(before, after, 'jobql_jobs_finished_total', { kind: 'echo', status: 'completed' })).toBe(3);
  expect(grew(before, after, 'jobql_jobs_finished_total', { kind: 'fail', status: 'failed' })).toBe(2);
  expect(grew(before, after, 'jobql_jobs_finished_total', { kind: 'flaky', status: 'failed' })).toBe(0);
  expect(grew(before, after, 'jobql_job_attempts_failed_total', { kind: 'fail', code: 'JOB_FAILED' })).toBe(2);
  expect(grew(before, after, 'jobql_job_attempts_failed_total', { kind: 'flaky', code: 'FLAKY' })).toBe(1);
  expect(grew(before, after, 'jobql_jobs_requeued_total', { kind: 'flaky' })).toBe(1);

  // One run-time and one pickup observation per attempt.
  expect(grew(before, after, 'jobql_job_run_seconds_count', { kind: 'echo' })).toBe(3);
  expect(grew(before, after, 'jobql_job_run_seconds_count', { kind: 'flaky' })).toBe(2);
  expect(grew(before, after, 'jobql_job_pickup_seconds_count', { kind: 'fail' })).toBe(2);
  expect(grew(before, after, 'jobql_job_pickup_seconds_count', { kind: 'echo' })).toBe(3);

  expect(grew(before, after, 'jobql_graphql_operations_total', { operation: 'createJob', type: 'mutation', outcome: 'ok' })).toBe(6);
  // The jobs' tenant, kinds' inputs and messages stay out of the metrics.
  expect(after.text).not.toContain('acme');

  // retryJob puts a failed job back: counted as resubmitted, and it fails (is finished) once more.
  const failed = jobs[3]?.id ?? '';
  await data(app.url, RetryJobDocument, { id: failed }, AUTH);
  const retried = await waitFor('the retried job to fail again', async () => {
    const now = await metrics();
    return grew(before, now, 'jobql_jobs_finished_total', { kind: 'fail', status: 'failed' }) === 3 ? now : undefined;
  });
  expect(grew(after, retried, 'jobql_jobs_resubmitted_total', { kind: 'fail' })).toBe(1);
  expect(grew(after, retried, 'jobql_jobs_created_total', { kind: 'fail' })).toBe(0);
  expect(grew(after, retried, 'jobql_job_attempts_started_total', { kind: 'fail' })).toBe(1);
});

test('an idempotent replay is not counted again; a scheduled job shows in the gauges until it is cancelled', async () => {
  const before = await metrics();
  const input = {
    kind: 'echo',
    input: { later: true },
    runAt: new Date(Date.now() + 3_600_000).toISOString(),
    idempotencyKey: 'metrics-once',
  };
  const first = await create(input);
  const again = await create(input);
  expect(again.id).toBe(first.id);
  const scheduled = await metrics();
  expect(grew(before, scheduled, 'jobql_jobs_created_total', { kind: 'echo' })).toBe(1);
  // Database-wide gauges, read at scrape time: this test file's database has exactly this one waiting job.
  expect(scheduled.value('jobql_jobs_scheduled')).toBe(1);
  expect(scheduled.value('jobql_jobs_queued')).toBe(0);
  expect(scheduled.value('jobql_jobs_running')).toBe(0);

  await data(app.url, CancelJobDocument, { id: first.id }, AUTH);
  const after = await metrics();
  expect(grew(before, after, 'jobql_jobs_finished_total', { kind: 'echo', status: 'cancelled' })).toBe(1);
  expect(after.value('jobql_jobs_scheduled')).toBe(0);
});

test('the running gauges and active subscriptions follow what runs and who listens', async () => {
  const before = await metrics();
  expect(before.value('jobql_runner_slots')).toBe(4);
  const job = await create({ kind: 'sleep', input: { ms: 3000 } });
  const client = wsClient(app.url, AUTH);
  try {
    const stream = collect(client, JobUpdatedDocument, { id: job.id });
    const during = await waitFor('the job to run and the subscription to be open', async () => {
      const now = await metrics();
      return now.value('jobql_runner_jobs_running') === 1 && now.value('jobql_subscriptions_active') === 1 ? now : undefined;
    });
    expect(during.value('jobql_jobs_running')).toBe(1);
    expect(
      during.value('jobql_db_pool_connections', { state: 'idle' }) + during.value('jobql_db_pool_connections', { state: 'in_use' }),
    ).toBeGreaterThan(0);
    expect(await stream.done).toEqual({ completed: true });
    // The subscriber hears of the end through NOTIFY, the runner from its own UPDATE: either may come first.
    const after = await waitFor('the subscription to be released and the runner to be idle', async () => {
      const now = await metrics();
      const idle = now.value('jobql_runner_jobs_running') === 0 && now.value('jobql_jobs_running') === 0;
      return now.value('jobql_subscriptions_active') === 0 && idle ? now : undefined;
    });
    expect(grew(before, after, 'jobql_graphql_operations_total', { operation: 'jobUpdated', type: 'subscription', outcome: 'ok' })).toBe(1);
  } finally {
    await client.dispose();
  }
});

describe('GraphQL operations and HTTP requests', () => {
  test('are counted by root field, type and outcome: ok, client errors, parse and validation failures', async () => {
    const before = await metrics();
    await data(app.url, GetJobDocument, { id: '00000000-0000-4000-8000-000000000000' }, AUTH);
    const missing = await execute(app.url, CancelJobDocument, { id: '00000000-0000-4000-8000-000000000000' }, AUTH);
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await postGraphQL(app.url, { query: 'query Broken {' }, AUTH)).errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect((await postGraphQL(app.url, { query: 'query Wrong { nope }' }, AUTH)).errors?.[0]?.extensions?.code).toBe(
      'GRAPHQL_VALIDATION_FAILED',
    );
    const rest = await fetch(`${app.url}/jobs/00000000-0000-4000-8000-000000000000`, { headers: AUTH });
    await rest.text();
    const unknown = await fetch(`${app.url}/no/such/route`);
    await unknown.text();
    const after = await metrics();

    const ops = (labels: Record<string, string>) => grew(before, after, 'jobql_graphql_operations_total', labels);
    expect(ops({ operation: 'job', type: 'query', outcome: 'ok' })).toBe(1);
    expect(ops({ operation: 'cancelJob', type: 'mutation', outcome: 'client_error' })).toBe(1);
    // Documents that never ran are counted under "invalid".
    expect(ops({ operation: 'invalid', type: 'unknown', outcome: 'client_error' })).toBe(1);
    expect(ops({ operation: 'invalid', type: 'query', outcome: 'client_error' })).toBe(1);
    expect(after.text).not.toContain('operation="Wrong"');
    // GET /jobs/{id} runs its query without Yoga: it is counted as an HTTP request only.
    expect(grew(before, after, 'jobql_graphql_operation_seconds_count', { type: 'query' })).toBe(1);
    expect(grew(before, after, 'jobql_http_requests_total', { route: 'jobs', status: '404' })).toBe(1);
    expect(grew(before, after, 'jobql_http_requests_total', { route: 'unknown', status: '404' })).toBe(1);
    expect(grew(before, after, 'jobql_http_requests_total', { route: 'graphql', status: '200' })).toBeGreaterThanOrEqual(2);
  });

  test('operations are labelled by the root field they select, never by the name the client gave them', async () => {
    const before = await metrics();
    const named = await postGraphQL(
      app.url,
      { query: 'mutation CreateInvoiceForAcmeCorpCustomer4711 { createJob(input: { kind: "echo" }) { id } }' },
      AUTH,
    );
    expect(named.errors).toBeUndefined();
    await postGraphQL(
      app.url,
      { query: 'query Customer4711Both { job(id: "00000000-0000-4000-8000-000000000000") { id } jobs(first: 1) { edges { cursor } } }' },
      AUTH,
    );
    await postGraphQL(app.url, { query: 'query Customer4711Schema { __schema { queryType { name } } }' }, AUTH);
    await postGraphQL(app.url, { query: 'query Customer4711Typename { __typename }' }, AUTH);
    for (let n = 0; n < 20; n++)
      await postGraphQL(app.url, { query: `query Name${n} { ...F } fragment F on Query { jobs(first: 1) { edges { cursor } } }` }, AUTH);
    const after = await metrics();
    const ops = (labels: Record<string, string>) => grew(before, after, 'jobql_graphql_operations_total', labels);
    expect(ops({ operation: 'createJob', type: 'mutation', outcome: 'ok' })).toBe(1);
    expect(ops({ operation: 'jobs', type: 'query', outcome: 'ok' })).toBe(20);
    expect(ops({ operation: 'introspection', type: 'query', outcome: 'ok' })).toBe(1);
    expect(ops({ operation: 'other', type: 'query', outcome: 'ok' })).toBe(2);
    expect(after.text).not.toMatch(/Customer4711|Name\d/);
    // Every label is a root field of the schema or one of the fixed ones.
    const rootFields = ['job', 'jobs', 'awaitJob', 'createJob', 'createJobs', 'cancelJob', 'retryJob', 'jobUpdated', 'jobsUpdated'];
    const labels = new Set(after.series('jobql_graphql_operations_total').map((key) => /operation="([^"]*)"/.exec(key)?.[1]));
    for (const label of labels) expect([...rootFields, 'introspection', 'other', 'invalid']).toContain(label);
  });
});

describe('METRICS_PORT', () => {
  test('a worker-only process serves its probes and metrics there, and counts the jobs it ran while the API process counts the ones it created', async () => {
    const shared = await createTestDatabase();
    const api = await startTestApp(shared.url, { runner: { concurrency: 0 } });
    const worker = await startApp(loadConfig({ DATABASE_URL: shared.url, HOST: '127.0.0.1', WORKER_ONLY: 'true', METRICS_PORT: '0' }), {
      kinds: demoKinds,
    });
    try {
      expect(worker.url).toBeNull();
      const metricsUrl = worker.metricsUrl ?? '';
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const jobs = await Promise.all([1, 2].map((n) => data(api.url, CreateJobDocument, { input: { kind: 'echo', input: { n } } })));
      for (const { createJob } of jobs) await waitForJob(api.url, createJob.id, 'COMPLETED');

      const onApi = await scrape(api.url);
      const onWorker = await waitFor('the worker to count both jobs', async () => {
        const now = await scrape(metricsUrl);
        return now.value('jobql_jobs_finished_total', { kind: 'echo', status: 'completed' }) === 2 ? now : undefined;
      });
      expect(onApi.value('jobql_jobs_created_total', { kind: 'echo' })).toBe(2);
      expect(onApi.value('jobql_job_attempts_started_total', { kind: 'echo' })).toBe(0);
      expect(onWorker.value('jobql_jobs_created_total', { kind: 'echo' })).toBe(0);
      expect(onWorker.value('jobql_job_attempts_started_total', { kind: 'echo' })).toBe(2);
      expect(onWorker.value('jobql_runner_slots')).toBe(4);

      const ready = await fetch(`${metricsUrl}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready' });
      // Only the probes live on this port: no API.
      const graphql = await fetch(`${metricsUrl}/graphql`, { method: 'POST' });
      await graphql.text();
      expect(graphql.status).toBe(404);
      const requests = await scrape(metricsUrl);
      expect(requests.value('jobql_http_requests_total', { route: 'readyz', status: '200' })).toBe(1);
      expect(requests.value('jobql_http_requests_total', { route: 'unknown', status: '404' })).toBe(1);
    } finally {
      await worker.stop();
      await api.stop();
      await shared.drop();
    }
  });
});
