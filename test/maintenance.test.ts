import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { setLogLevel } from '../src/logger.ts';
import { startEventLogPruning } from '../src/maintenance/event-log-pruning.ts';
import { startJobRetention } from '../src/maintenance/job-retention.ts';
import { startWorkerRecovery } from '../src/maintenance/worker-recovery.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

// Each upkeep service driven directly against a real database: what it deletes or ends, what it keeps, and
// that its own timer does the work (and stops with it).
let db: TestDatabase;
let pool: DatabasePool;
const stops: (() => void)[] = [];
const HOUR = 3_600_000;

beforeAll(async () => {
  setLogLevel((process.env.LOG_LEVEL as 'info' | undefined) ?? 'silent');
  db = await createTestDatabase();
  pool = await createDatabasePool(db.url);
});

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await db.query('DELETE FROM jobs');
  await db.query('DELETE FROM workers');
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `count` jobs that finished `agoMs` ago. */
async function finishedJobs(count: number, agoMs: number): Promise<void> {
  await db.query(
    `INSERT INTO jobs (id, kind, status, attempt, started_at, finished_at)
     SELECT gen_random_uuid(), 'echo', 'completed', 1, now() - make_interval(secs => $2), now() - make_interval(secs => $2)
     FROM generate_series(1, $1)`,
    [count, agoMs / 1000],
  );
}

const count = async (table: 'jobs' | 'job_events') => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]?.n);

test('job retention deletes the finished jobs past JOB_RETENTION in batches, keeps the newer ones, and runs at start', async () => {
  await finishedJobs(1100, 2 * HOUR); // more than two batches of 500
  await finishedJobs(3, 60_000);
  await db.query(`INSERT INTO jobs (id, kind) VALUES (gen_random_uuid(), 'echo')`);
  const retention = startJobRetention({ pool, retentionMs: HOUR });
  stops.push(retention.stop);
  // The pass it started with deletes them all, batch after batch.
  await until(async () => (await count('jobs')) === 4);
  expect(await retention.runOnce()).toBe(0);
  expect(await db.query('SELECT status FROM jobs ORDER BY status')).toEqual([
    { status: 'completed' },
    { status: 'completed' },
    { status: 'completed' },
    { status: 'queued' },
  ]);
});

test('job retention 0 keeps finished jobs forever; its timer runs again until stopped', async () => {
  await finishedJobs(2, 2 * HOUR);
  const keepAll = startJobRetention({ pool, retentionMs: 0, intervalMs: 50 });
  stops.push(keepAll.stop);
  expect(await keepAll.runOnce()).toBe(0);
  const timed = startJobRetention({ pool, retentionMs: HOUR, intervalMs: 100 });
  stops.push(timed.stop);
  await until(async () => (await count('jobs')) === 0);
  await finishedJobs(1, 2 * HOUR);
  await until(async () => (await count('jobs')) === 0); // the timer, not the start
  timed.stop();
  await finishedJobs(1, 2 * HOUR);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await count('jobs')).toBe(1);
});

test('event-log pruning deletes events older than EVENT_LOG_RETENTION and keeps the rest; 0 keeps them all', async () => {
  // Each insert and update writes an event (triggers); the first job's are made two hours old.
  const [old] = await db.query<{ id: string }>(`INSERT INTO jobs (id, kind) VALUES (gen_random_uuid(), 'echo') RETURNING id`);
  const [recent] = await db.query<{ id: string }>(`INSERT INTO jobs (id, kind) VALUES (gen_random_uuid(), 'echo') RETURNING id`);
  await db.query(`UPDATE jobs SET progress = 0.5 WHERE id = $1`, [recent?.id]);
  await db.query(`UPDATE job_events SET recorded_at = now() - interval '2 hours' WHERE job_id = $1`, [old?.id]);
  const before = await db.query<{ job_id: string }>('SELECT job_id FROM job_events ORDER BY revision');
  expect(before.filter((row) => row.job_id === old?.id).length).toBeGreaterThan(0);

  const keepAll = startEventLogPruning({ pool, retentionMs: 0 });
  stops.push(keepAll.stop);
  expect(await keepAll.runOnce()).toBe(0);
  expect(await count('job_events')).toBe(before.length);

  const pruning = startEventLogPruning({ pool, retentionMs: HOUR });
  stops.push(pruning.stop);
  expect(await pruning.runOnce()).toBe(before.length - (await db.query('SELECT 1 FROM job_events WHERE job_id = $1', [recent?.id])).length);
  const after = await db.query<{ job_id: string }>('SELECT DISTINCT job_id FROM job_events');
  expect(after).toEqual([{ job_id: recent?.id }]);
  // The jobs themselves stay: only their history goes.
  expect(await count('jobs')).toBe(2);
});

test('event-log pruning runs on its own timer', async () => {
  const [job] = await db.query<{ id: string }>(`INSERT INTO jobs (id, kind) VALUES (gen_random_uuid(), 'echo') RETURNING id`);
  const pruning = startEventLogPruning({ pool, retentionMs: HOUR, intervalMs: 100 });
  stops.push(pruning.stop);
  await db.query(`UPDATE job_events SET recorded_at = now() - interval '2 hours' WHERE job_id = $1`, [job?.id]);
  await until(async () => (await count('job_events')) === 0);
});

test('worker recovery ends, on its own timer, the running jobs of a process whose lock is free, and stops with stop()', async () => {
  const recovery = startWorkerRecovery({
    pool,
    leaseMs: 3000,
    abortGraceMs: 500,
    retryBackoffMs: 50,
    metrics: createMetrics(),
    kindTimeouts: [],
    intervalMs: 100,
  });
  stops.push(recovery.stop);
  // A process that died: its workers row is there, its advisory lock is held by nobody.
  const running = async () => {
    const [worker] = await db.query<{ id: number }>(
      `INSERT INTO workers (id, session_tag, heartbeat_at) VALUES (nextval('jobs_worker_id_seq'), 'jobql:00000000dead', now()) RETURNING id`,
    );
    const [job] = await db.query<{ id: string }>(
      `INSERT INTO jobs (id, kind, status, attempt, max_attempts, worker_id, started_at)
       VALUES (gen_random_uuid(), 'sleep', 'running', 1, 1, $1, now()) RETURNING id`,
      [worker?.id],
    );
    return job?.id as string;
  };
  const status = async (id: string) =>
    (await db.query<{ status: string; error_code: string | null }>('SELECT status, error_code FROM jobs WHERE id = $1', [id]))[0];
  const first = await running();
  await until(async () => (await status(first))?.status === 'failed');
  expect(await status(first)).toEqual({ status: 'failed', error_code: 'INTERRUPTED' });
  recovery.stop();
  await new Promise((resolve) => setTimeout(resolve, 300)); // a pass already under way finishes
  const second = await running();
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await status(second)).toEqual({ status: 'running', error_code: null });
});
