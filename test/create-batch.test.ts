import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Config } from '../src/config.ts';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { sql } from '../src/db/sql.ts';
import { isDatabaseUnavailable } from '../src/db/unavailable.ts';
import { createCreateBatcher } from '../src/jobs/create-batch.ts';
import { insertJob, insertJobs, type NewJob } from '../src/jobs/job-queries.ts';
import { setLogLevel } from '../src/logger.ts';
import { CreateJobDocument, GetJobDocument } from './generated/graphql.ts';
import { startTestApp, useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { startDatabaseProxy } from './helpers/db-proxy.ts';
import { data, execute } from './helpers/graphql.ts';
import { scrape } from './helpers/metrics.ts';

// Group commit of creates (src/jobs/create-batch.ts): createJob calls that arrive while an insert is in flight
// are inserted together in the next statement, each caller getting its own row (or its own error) back.

type EventRow = { job_id: string; revision: number; status: string };

const newJob = (fields: Partial<NewJob> = {}): NewJob => ({
  id: randomUUID(),
  tenant: 'acme',
  kind: 'echo',
  input: {},
  maxAttempts: 1,
  priority: 0,
  runAt: null,
  timeoutMs: null,
  idempotencyKey: null,
  ...fields,
});

describe('the create batcher against a database that stops answering', () => {
  const db = useTestDatabase();

  test('a batch the database did not answer fails all its jobs at once with that error, written nowhere, instead of one wait per job', async () => {
    setLogLevel((process.env.LOG_LEVEL as Config['log']['level'] | undefined) ?? 'silent');
    const proxy = await startDatabaseProxy(db.url);
    // The client gives up on a silent server after statementMs + 1 s, and on a connection after connectMs: 3 s each.
    const pool = await createDatabasePool(proxy.url, 2, { statementMs: 2000, connectMs: 3000 });
    try {
      await Promise.all([pool.query(sql.unsafe`SELECT pg_sleep(0.05)`), pool.query(sql.unsafe`SELECT pg_sleep(0.05)`)]);
      proxy.pause();
      const batcher = createCreateBatcher(pool, () => {});
      const jobs = [0, 1, 2, 3, 4].map((n) => newJob({ input: { n } }));
      const started = performance.now();
      // The first goes alone and waits out its timeout; the four behind it go in one batch and wait out one more.
      const settled = await Promise.allSettled(jobs.map((job) => batcher.insert(job)));
      const waits = (performance.now() - started) / 3000;
      expect(settled.map((outcome) => outcome.status)).toEqual(Array(5).fill('rejected'));
      for (const outcome of settled) expect(isDatabaseUnavailable((outcome as PromiseRejectedResult).reason)).toBe(true);
      // Two waits, not three or more: retrying the batch's jobs one by one against a silent server would wait again.
      expect(waits).toBeLessThan(2.6);
      await proxy.resume();
      const written = await db.query('SELECT id FROM jobs WHERE id = ANY($1)', [jobs.map((job) => job.id)]);
      expect(written).toEqual([]);
    } finally {
      await proxy.resume();
      await pool.end();
      await proxy.close();
    }
  });
});

describe('the create batcher against the table', () => {
  const db = useTestDatabase();
  let pool: DatabasePool;
  beforeAll(async () => {
    // The batcher warns when a batch fails and is retried one by one (the third test makes it).
    setLogLevel((process.env.LOG_LEVEL as Config['log']['level'] | undefined) ?? 'silent');
    pool = await createDatabasePool(db.url, 4);
  });
  afterAll(async () => {
    await pool.end();
  });

  test('creates queued behind one in flight share one statement; each caller gets its own row, with every column it asked for', async () => {
    const writes: number[] = [];
    const batcher = createCreateBatcher(pool, (jobs) => writes.push(jobs));
    const jobs = [
      newJob({ input: { n: 0 } }),
      newJob({ input: { n: 1 }, tenant: 'globex', priority: 7 }),
      newJob({ input: { n: [2, 'two'] }, maxAttempts: 5, timeoutMs: 1234 }),
      newJob({ input: { n: 3 }, runAt: '2999-01-02T03:04:05.678901Z', idempotencyKey: 'three' }),
      newJob({ kind: 'sleep', input: { ms: 4 }, priority: -1000 }),
    ];
    // All in one tick: the first is written at once, alone; the keyed one alone beside it (it may wait on
    // another transaction's key); the other three wait for the first and go in one statement.
    const created = await Promise.all(jobs.map((job) => batcher.insert(job)));
    expect(writes.sort()).toEqual([1, 1, 3]);
    for (const [index, job] of jobs.entries()) {
      expect(created[index]).toMatchObject({
        id: job.id,
        tenant: job.tenant,
        kind: job.kind,
        input: job.input,
        maxAttempts: job.maxAttempts,
        priority: job.priority,
        timeoutMs: job.timeoutMs,
        idempotencyKey: job.idempotencyKey,
        status: 'queued',
        attempt: 0,
        revision: 1,
      });
    }
    expect(created[3]?.runAt).toBe('2999-01-02T03:04:05.678901Z');
    // A job without runAt is due when it was inserted, as with the one-row insert.
    expect(created[4]?.runAt).toBe(created[4]?.createdAt);
    // One revision-1 event per job, nothing else (the statement-level trigger writes them in one INSERT).
    const events = await db.query<EventRow>('SELECT job_id, revision, status FROM job_events WHERE job_id = ANY($1)', [
      jobs.map((job) => job.id),
    ]);
    expect(events.map((event) => event.job_id).sort()).toEqual(jobs.map((job) => job.id).sort());
    for (const event of events) expect(event).toMatchObject({ revision: 1, status: 'queued' });
  });

  test('insertJobs: an idempotency key taken earlier in the same statement, or in the table, gives no row; the same key in another tenant is its own', async () => {
    await insertJob(pool, newJob({ idempotencyKey: 'held' }));
    const jobs = [
      newJob({ input: { first: true } }),
      newJob({ idempotencyKey: 'twice', input: { n: 1 } }),
      newJob({ idempotencyKey: 'twice', input: { n: 1 } }),
      newJob({ idempotencyKey: 'held' }),
      newJob({ idempotencyKey: 'twice', input: { n: 1 }, tenant: 'globex' }),
    ];
    const written = new Set((await insertJobs(pool, jobs)).map((job) => job.id));
    // The first of two equal keys in one statement wins, in the statement's order.
    expect(jobs.map((job) => written.has(job.id))).toEqual([true, true, false, false, true]);
    const rows = await db.query<{ tenant: string; n: number }>(
      "SELECT tenant, count(*)::int AS n FROM jobs WHERE idempotency_key = 'twice' GROUP BY tenant ORDER BY tenant",
    );
    expect(rows).toEqual([
      { tenant: 'acme', n: 1 },
      { tenant: 'globex', n: 1 },
    ]);
  });

  test('a create whose idempotency key another transaction holds uncommitted waits alone: the other creates are written meanwhile', async () => {
    const batcher = createCreateBatcher(pool, () => {});
    let commit = () => {};
    const held = new Promise<void>((resolve) => {
      commit = resolve;
    });
    let holding = () => {};
    const inserted = new Promise<void>((resolve) => {
      holding = resolve;
    });
    // An application's open transaction that enqueued with the key and has not committed yet.
    const transaction = pool.transaction(async (tx) => {
      await insertJob(tx, newJob({ idempotencyKey: 'open' }));
      holding();
      await held;
    });
    await inserted;
    const keyed = batcher.insert(newJob({ idempotencyKey: 'open' }));
    const others = await Promise.all([0, 1, 2, 3].map((n) => batcher.insert(newJob({ input: { n } }))));
    expect(others.every((job) => job?.status === 'queued')).toBe(true);
    // Still waiting on the key while the others are in the table.
    expect(await Promise.race([keyed.then(() => 'settled'), new Promise((resolve) => setTimeout(resolve, 300, 'waiting'))])).toBe(
      'waiting',
    );
    commit();
    await transaction;
    // The key is the committed job's: this caller reads the holder, as before batching.
    expect(await keyed).toBeNull();
  });

  test('a row PostgreSQL refuses fails only its own caller, with the error the one-row insert gives, and nothing of it is written', async () => {
    const writes: number[] = [];
    const batcher = createCreateBatcher(pool, (jobs) => writes.push(jobs));
    // What the one-row statement answers for such a row (the library's createJob does not check runAt).
    const alone = await insertJob(pool, newJob({ runAt: 'not a time' })).catch((error: unknown) => error);
    expect(alone).toBeInstanceOf(Error);
    const bad = newJob({ runAt: 'not a time' });
    const good = [newJob({ input: { n: 1 } }), newJob({ input: { n: 2 } }), newJob({ input: { n: 3 } })];
    const [first, ...rest] = await Promise.allSettled([
      batcher.insert(newJob({ input: { n: 0 } })),
      batcher.insert(good[0] as NewJob),
      batcher.insert(bad),
      batcher.insert(good[1] as NewJob),
      batcher.insert(good[2] as NewJob),
    ]);
    expect(first?.status).toBe('fulfilled');
    expect(rest.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const refused = rest[1] as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf((alone as Error).constructor);
    expect((refused.reason as Error).message).toBe((alone as Error).message);
    for (const [index, outcome] of [rest[0], rest[2], rest[3]].entries()) {
      expect((outcome as PromiseFulfilledResult<{ id: string }>).value.id).toBe(good[index]?.id);
    }
    // The first alone; the batch of four failed (not counted), then its four one by one, three of them written.
    expect(writes).toEqual([1, 1, 1, 1]);
    expect(await db.query('SELECT id FROM jobs WHERE id = $1', [bad.id])).toEqual([]);
    const events = await db.query<EventRow>('SELECT job_id, revision FROM job_events WHERE job_id = ANY($1)', [good.map((job) => job.id)]);
    expect(events).toHaveLength(3);
  });

  test('close waits for the queued inserts, then refuses new ones', async () => {
    const batcher = createCreateBatcher(pool, () => {});
    const pending = [newJob(), newJob(), newJob()].map((job) => batcher.insert(job));
    await batcher.close();
    const settled = await Promise.allSettled(pending);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    await expect(batcher.insert(newJob())).rejects.toThrow('jobql is stopping');
  });
});

describe('createJob on a server, concurrently', () => {
  const ACME = { authorization: 'Bearer acme-key-0123456789abcdef' };
  const GLOBEX = { authorization: 'Bearer globex-key-0123456789abcdef' };
  const db = useTestDatabase();
  // No runner: the jobs stay as inserted, so their events are only the insert's.
  const app = useTestApp(db, {
    runner: { concurrency: 0 },
    auth: {
      apiKeys: [
        { tenant: 'acme', key: 'acme-key-0123456789abcdef' },
        { tenant: 'globex', key: 'globex-key-0123456789abcdef' },
      ],
    },
    http: { metricsPort: 0 },
  });
  const metrics = () => scrape(app.metricsUrl ?? '');

  test('many concurrent createJob calls all succeed with their own inputs, ids and tenants, in fewer statements than jobs', async () => {
    const JOBS = 80;
    const before = await metrics();
    const calls = Array.from({ length: JOBS }, (_, n) => {
      const headers = n % 2 === 0 ? ACME : GLOBEX;
      return data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { n } } }, headers).then(({ createJob }) => ({
        n,
        headers,
        job: createJob,
      }));
    });
    const created = await Promise.all(calls);
    expect(new Set(created.map(({ job }) => job.id)).size).toBe(JOBS);
    for (const { n, job } of created) expect(job).toMatchObject({ kind: 'echo', input: { n }, status: 'QUEUED', revision: 1 });
    const after = await metrics();
    const writes = after.value('jobql_create_writes_total') - before.value('jobql_create_writes_total');
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThan(JOBS);
    expect(after.value('jobql_jobs_created_total', { kind: 'echo' }) - before.value('jobql_jobs_created_total', { kind: 'echo' })).toBe(
      JOBS,
    );

    // Each job is its tenant's: stored with it, and invisible to the other.
    const rows = await db.query<{ id: string; tenant: string; n: number }>(
      "SELECT id, tenant, (input->>'n')::int AS n FROM jobs WHERE id = ANY($1)",
      [created.map(({ job }) => job.id)],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const { n, job, headers } of created) {
      expect(byId.get(job.id)).toMatchObject({ n, tenant: headers === ACME ? 'acme' : 'globex' });
    }
    for (const { job, headers } of created.slice(0, 6)) {
      const other = headers === ACME ? GLOBEX : ACME;
      expect((await data(app.url, GetJobDocument, { id: job.id }, other)).job).toBeNull();
      expect((await data(app.url, GetJobDocument, { id: job.id }, headers)).job?.id).toBe(job.id);
    }
    // One revision-1 event per job, as the one-row insert records.
    const events = await db.query<EventRow>('SELECT job_id, revision, status FROM job_events WHERE job_id = ANY($1)', [
      created.map(({ job }) => job.id),
    ]);
    expect(events).toHaveLength(JOBS);
    for (const event of events) expect(event).toMatchObject({ revision: 1, status: 'queued' });
  });

  test('concurrent creates with one idempotency key make one job per tenant, and every caller gets it; another input is a CONFLICT', async () => {
    const before = await metrics();
    const input = { kind: 'echo', input: { order: 42 }, idempotencyKey: 'order-42' };
    const isGlobex = (n: number) => n % 3 === 2;
    const calls = Array.from({ length: 12 }, (_, n) => data(app.url, CreateJobDocument, { input }, isGlobex(n) ? GLOBEX : ACME));
    const created = (await Promise.all(calls)).map(({ createJob }) => createJob);
    const acmeIds = new Set(created.filter((_, n) => !isGlobex(n)).map((job) => job.id));
    const globexIds = new Set(created.filter((_, n) => isGlobex(n)).map((job) => job.id));
    expect(acmeIds.size).toBe(1);
    expect(globexIds.size).toBe(1);
    expect([...acmeIds][0]).not.toBe([...globexIds][0]);
    const rows = await db.query<{ tenant: string }>("SELECT tenant FROM jobs WHERE idempotency_key = 'order-42' ORDER BY tenant");
    expect(rows.map((row) => row.tenant)).toEqual(['acme', 'globex']);
    // Replays are not created jobs.
    const after = await metrics();
    expect(after.value('jobql_jobs_created_total', { kind: 'echo' }) - before.value('jobql_jobs_created_total', { kind: 'echo' })).toBe(2);

    const conflicting = await execute(app.url, CreateJobDocument, { input: { ...input, input: { order: 43 } } }, ACME);
    expect(conflicting.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  test("a create PostgreSQL refuses, among concurrent ones, fails only its caller (the library's createJob does not check runAt)", async () => {
    const calls = Array.from({ length: 20 }, (_, m) =>
      app.jobsFor('acme').createJob({ kind: 'echo', input: { m }, runAt: m === 10 ? 'not a time' : null }),
    );
    const settled = await Promise.allSettled(calls);
    expect(settled.map((outcome) => outcome.status)).toEqual(Array.from({ length: 20 }, (_, m) => (m === 10 ? 'rejected' : 'fulfilled')));
    const ids = settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value.id] : []));
    const rows = await db.query<{ id: string; m: number }>("SELECT id, (input->>'m')::int AS m FROM jobs WHERE input ? 'm' ORDER BY m");
    expect(rows.map((row) => row.m)).toEqual(Array.from({ length: 20 }, (_, m) => m).filter((m) => m !== 10));
    expect(rows.map((row) => row.id).sort()).toEqual(ids.sort());
  });
});

describe('stopping', () => {
  const db = useTestDatabase();

  test('creates queued when stop begins are written before the pool closes; a create after the stop is refused cleanly', async () => {
    const app = await startTestApp(db.url, { runner: { concurrency: 0 } });
    const jobs = app.jobsFor('default');
    const pending = Array.from({ length: 30 }, (_, n) => jobs.createJob({ kind: 'echo', input: { stopping: n } }));
    await app.stop();
    const settled = await Promise.allSettled(pending);
    expect(settled.map((outcome) => outcome.status)).toEqual(Array(30).fill('fulfilled'));
    const [count] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE input ? 'stopping'");
    expect(count?.n).toBe(30);
    await expect(jobs.createJob({ kind: 'echo' })).rejects.toThrow('jobql is stopping: the job was not created');
  });
});
