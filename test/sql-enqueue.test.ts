import { beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { z } from 'zod';
import { defineKind, type JobKind } from '../src/kinds/kind.ts';
import { CreateJobDocument, JobsUpdatedDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { waitFor } from './helpers/wait.ts';

// jobql_create_job: an application enqueues in its own transaction, with its own writes, from any language.
const adder = defineKind({
  name: 'adder',
  input: z.strictObject({ a: z.number().int(), b: z.number().int() }),
  // Policies SQL cannot see: applied when a runner claims the job.
  maxAttempts: 3,
  timeoutMs: 5000,
  handler: async ({ a, b }) => ({ sum: a + b }),
});
const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 2 } }, [adder as unknown as JobKind]);

// The application's own connection, as a service in another language would hold one.
let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query('CREATE TABLE orders (id serial PRIMARY KEY, job_id uuid)');
});
// Before the database is dropped (its afterAll runs before any declared here).
db.beforeDrop(async () => {
  await client.end();
});

/** Inserts an order and enqueues its job in one transaction, then commits or rolls back. */
async function orderWithJob(input: unknown, end: 'COMMIT' | 'ROLLBACK', options: unknown = {}): Promise<string> {
  await client.query('BEGIN');
  try {
    const { rows } = await client.query<{ id: string }>('SELECT jobql_create_job($1, $2, $3) AS id', [
      'adder',
      JSON.stringify(input),
      JSON.stringify(options),
    ]);
    const id = rows[0]?.id as string;
    await client.query('INSERT INTO orders (job_id) VALUES ($1)', [id]);
    await client.query(end);
    return id;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

async function jobRow(id: string) {
  const rows = await db.query<{ status: string; max_attempts: number; timeout_ms: number | null; tenant: string }>(
    'SELECT status, max_attempts, timeout_ms, tenant FROM jobs WHERE id = $1',
    [id],
  );
  return rows[0];
}

test('rolled back with the transaction that enqueued it, the job never existed', async () => {
  const id = await orderWithJob({ a: 1, b: 2 }, 'ROLLBACK');
  expect(await jobRow(id)).toBeUndefined();
  expect(await db.query('SELECT 1 FROM job_events WHERE job_id = $1', [id])).toHaveLength(0);
  expect(await db.query('SELECT 1 FROM orders WHERE job_id = $1', [id])).toHaveLength(0);
});

test('committed, it runs to COMPLETED and a subscriber hears of it, with the kind defaults filled in at claim', async () => {
  const ws = wsClient(app.url);
  try {
    const feed = collect(ws, JobsUpdatedDocument, { kind: 'adder' });
    const seen = (id: string, status: string) =>
      feed.results.some((result) => result.data?.jobsUpdated.id === id && result.data.jobsUpdated.status === status) || undefined;
    // The feed is live once it delivers a job created through the API.
    const { createJob: probe } = await data(app.url, CreateJobDocument, { input: { kind: 'adder', input: { a: 0, b: 0 } } });
    await waitFor('the feed to deliver a first job', async () => seen(probe.id, 'COMPLETED'));

    const id = await orderWithJob({ a: 2, b: 40 }, 'COMMIT');
    const done = await waitForJob(app.url, id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETED', result: { sum: 42 }, attempt: 1, maxAttempts: 3 });
    await waitFor('the feed to deliver the job queued, then completed', async () => seen(id, 'QUEUED') && seen(id, 'COMPLETED'));
    // The kind's defaults, which SQL cannot know, are the row's once a runner that knows the kind claimed it.
    expect(await jobRow(id)).toMatchObject({ max_attempts: 3, timeout_ms: 5000, tenant: 'default' });
    feed.unsubscribe();
  } finally {
    await ws.dispose();
  }
});

test("a job's own options win over the kind's defaults", async () => {
  const id = await orderWithJob({ a: 1, b: 1 }, 'COMMIT', { maxAttempts: 1, timeoutMs: 250, priority: 7 });
  expect(await waitForJob(app.url, id, ['COMPLETED', 'FAILED'])).toMatchObject({ status: 'COMPLETED', maxAttempts: 1, priority: 7 });
  expect(await jobRow(id)).toMatchObject({ max_attempts: 1, timeout_ms: 250 });
});

test('an idempotency key gives the same job for the same request, and a conflict for another', async () => {
  const options = { idempotencyKey: 'order-17' };
  const first = await orderWithJob({ a: 5, b: 5 }, 'COMMIT', options);
  // The same request, another key order in the JSON: the same job.
  expect(await orderWithJob({ b: 5, a: 5 }, 'COMMIT', options)).toBe(first);
  await expect(orderWithJob({ a: 5, b: 6 }, 'COMMIT', options)).rejects.toMatchObject({
    code: '23505',
    message: expect.stringContaining('idempotencyKey order-17 was used for a job with another kind or input'),
  });
  // Another tenant has its own keys.
  const other = await orderWithJob({ a: 5, b: 6 }, 'COMMIT', { ...options, tenant: 'acme', runAt: '2099-01-01T00:00:00Z' });
  expect(other).not.toBe(first);
  expect(await jobRow(other)).toMatchObject({ status: 'queued', tenant: 'acme' });
});

describe('bad options are a clear error (SQLSTATE 22023) and write nothing', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown option', { retries: 3 }, /unknown option "retries"/],
    ['options that are not an object', [1], /options must be a JSON object/],
    ['a priority out of range', { priority: 5000 }, /priority must be a whole number from -1000 to 1000/],
    ['maxAttempts that is not whole', { maxAttempts: 2.5 }, /maxAttempts must be a whole number from 1 to 100/],
    ['timeoutMs as a string', { timeoutMs: '100' }, /timeoutMs must be a whole number/],
    ['a runAt that is not ISO-8601', { runAt: 'tomorrow' }, /runAt must be an ISO-8601 timestamp/],
    ['an impossible runAt', { runAt: '2026-02-30T00:00:00Z' }, /runAt must be an ISO-8601 timestamp/],
    ['an empty tenant', { tenant: '' }, /tenant must be a string of 1 to 100 characters/],
    ['an idempotency key past 200 characters', { idempotencyKey: 'k'.repeat(201) }, /idempotencyKey must be a string of 1 to 200/],
  ];
  for (const [name, options, message] of cases) {
    test(name, async () => {
      const [before] = await db.query<{ count: string }>('SELECT count(*) FROM jobs');
      await expect(orderWithJob({ a: 1, b: 2 }, 'COMMIT', options)).rejects.toMatchObject({
        code: '22023',
        message: expect.stringMatching(message),
      });
      const [after] = await db.query<{ count: string }>('SELECT count(*) FROM jobs');
      expect(after?.count).toBe(before?.count);
    });
  }

  test('an empty kind', async () => {
    await expect(client.query("SELECT jobql_create_job('', '{}')")).rejects.toMatchObject({ code: '22023' });
  });
});

test("input its kind rejects ends FAILED with BAD_INPUT and the schema's message, without retries, and the runner runs on", async () => {
  const id = await orderWithJob({ a: 'one', b: 2 }, 'COMMIT');
  const failed = await waitForJob(app.url, id, ['COMPLETED', 'FAILED']);
  // maxAttempts is the kind's 3, yet the first attempt is the last: the same input would fail the same way.
  expect(failed).toMatchObject({
    status: 'FAILED',
    attempt: 1,
    maxAttempts: 3,
    error: { code: 'BAD_INPUT', message: expect.stringMatching(/does not match kind adder: at a: .*expected number/i) },
  });
  const next = await orderWithJob({ a: 1, b: 2 }, 'COMMIT');
  expect(await waitForJob(app.url, next, ['COMPLETED', 'FAILED'])).toMatchObject({ status: 'COMPLETED', result: { sum: 3 } });
});
