import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import pg from 'pg';
import { withApplicationName } from '../src/db/database.ts';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { WORKER_LOCK_NAMESPACE } from '../src/jobs/job-queries.ts';
import { setLogLevel } from '../src/logger.ts';
import { recoverDeadWorkers } from '../src/maintenance/worker-recovery.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

// The recovery pass alone, against processes faked with SQL: a worker row whose heartbeat the test sets, and
// a session that holds the worker's advisory lock as a real process's would (so the lock path sees it alive).
let db: TestDatabase;
let pool: DatabasePool;
const fakes: pg.Client[] = [];
const LEASE_MS = 3000;
const ABORT_GRACE_MS = 500;

beforeAll(async () => {
  setLogLevel((process.env.LOG_LEVEL as 'info' | undefined) ?? 'silent');
  db = await createTestDatabase();
  pool = await createDatabasePool(db.url);
});

afterEach(async () => {
  await Promise.all(fakes.splice(0).map((client) => client.end().catch(() => {})));
  await db.query('DELETE FROM jobs');
  await db.query('DELETE FROM workers');
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const recover = () =>
  recoverDeadWorkers({
    pool,
    leaseMs: LEASE_MS,
    abortGraceMs: ABORT_GRACE_MS,
    retryBackoffMs: 50,
    metrics: createMetrics(),
    kindTimeouts: [{ kind: 'slow', timeoutMs: 2000 }],
  });

/** A process as the others see it: a connection tagged `<tag>:session` holding the lock, and its workers row. */
async function fakeProcess(tag: string, heartbeatAgoMs: number): Promise<{ workerId: number; client: pg.Client }> {
  const client = new pg.Client({ connectionString: withApplicationName(db.url, `${tag}:session`) });
  client.on('error', () => {}); // terminated by the recovery under test
  await client.connect();
  fakes.push(client);
  const { rows } = await client.query<{ id: number }>(`SELECT nextval('jobs_worker_id_seq')::int AS id`);
  const workerId = (rows[0] as { id: number }).id;
  await client.query('SELECT pg_advisory_lock($1, $2)', [WORKER_LOCK_NAMESPACE, workerId]);
  await client.query('INSERT INTO workers (id, session_tag, heartbeat_at) VALUES ($1, $2, now() - make_interval(secs => $3))', [
    workerId,
    tag,
    heartbeatAgoMs / 1000,
  ]);
  return { workerId, client };
}

/** A running attempt of `workerId`, started `startedAgoMs` ago. */
async function runningJob(
  workerId: number,
  job: { kind?: string; startedAgoMs?: number; timeoutMs?: number; cancelAgoMs?: number; maxAttempts?: number } = {},
): Promise<string> {
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO jobs (id, kind, status, attempt, max_attempts, worker_id, started_at, timeout_ms, cancel_requested_at)
     VALUES (gen_random_uuid(), $1, 'running', 1, $2, $3, now() - make_interval(secs => $4), $5,
             now() - make_interval(secs => $6::float8))
     RETURNING id`,
    [
      job.kind ?? 'sleep',
      job.maxAttempts ?? 1,
      workerId,
      (job.startedAgoMs ?? 0) / 1000,
      job.timeoutMs ?? null,
      job.cancelAgoMs === undefined ? null : job.cancelAgoMs / 1000,
    ],
  );
  return (row as { id: string }).id;
}

async function jobs(ids: string[]) {
  const rows = await db.query<{ id: string; status: string; error_code: string | null; error: string | null }>(
    'SELECT id, status, error_code, error FROM jobs WHERE id = ANY($1)',
    [ids],
  );
  return ids.map((id) => rows.find((row) => row.id === id));
}

const sessionsTagged = (tag: string) =>
  db.query<{ application_name: string }>('SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1', [`${tag}:%`]);

test('a process that holds its lock but has not written its heartbeat for the lease: its jobs end, its row goes, its sessions are terminated', async () => {
  const frozen = await fakeProcess('jobql:00000000f0f0', LEASE_MS + 2000);
  const live = await fakeProcess('jobql:00000000a1a1', 0);
  const plain = await runningJob(frozen.workerId);
  const timedOut = await runningJob(frozen.workerId, { timeoutMs: 1000, startedAgoMs: 5000 });
  const kindDefault = await runningJob(frozen.workerId, { kind: 'slow', startedAgoMs: 5000 });
  const cancelled = await runningJob(frozen.workerId, { cancelAgoMs: 100 });
  const othersJob = await runningJob(live.workerId);

  await recover();

  expect(await jobs([plain, timedOut, kindDefault, cancelled, othersJob])).toEqual([
    expect.objectContaining({ status: 'failed', error_code: 'INTERRUPTED' }),
    expect.objectContaining({ status: 'failed', error_code: 'TIMEOUT', error: 'the job ran longer than its timeout of 1000 ms' }),
    expect.objectContaining({ status: 'failed', error_code: 'TIMEOUT', error: 'the job ran longer than its timeout of 2000 ms' }),
    expect.objectContaining({ status: 'cancelled' }),
    expect.objectContaining({ status: 'running' }),
  ]);
  expect(await db.query('SELECT id FROM workers ORDER BY id')).toEqual([{ id: live.workerId }]);
  // Terminated and gone (pg_terminate_backend waited for it), which also released its lock.
  expect(await sessionsTagged('jobql:00000000f0f0')).toEqual([]);
  await expect(frozen.client.query('SELECT 1')).rejects.toThrow();
  expect(await sessionsTagged('jobql:00000000a1a1')).toEqual([{ application_name: 'jobql:00000000a1a1:session' }]);
});

test('a stale row of a process that came back under a new worker id: its jobs end, but the process keeps its sessions', async () => {
  const tag = 'jobql:00000000b2b2';
  const before = await fakeProcess(tag, LEASE_MS + 2000);
  const after = await fakeProcess(tag, 0);
  const oldJob = await runningJob(before.workerId);
  const newJob = await runningJob(after.workerId);

  await recover();

  expect(await jobs([oldJob, newJob])).toEqual([
    expect.objectContaining({ status: 'failed', error_code: 'INTERRUPTED' }),
    expect.objectContaining({ status: 'running' }),
  ]);
  expect(await db.query('SELECT id FROM workers')).toEqual([{ id: after.workerId }]);
  expect(await sessionsTagged(tag)).toHaveLength(2);
});

test('whoever runs a job, it ends TIMEOUT once its limit is ABORT_GRACE_MS + the lease overdue, and CANCELLED once its cancel request is that old', async () => {
  const owner = await fakeProcess('jobql:00000000c3c3', 0);
  const slackMs = ABORT_GRACE_MS + LEASE_MS;
  const overdue = await runningJob(owner.workerId, { timeoutMs: 1000, startedAgoMs: 1000 + slackMs + 2000 });
  const overdueWithRetry = await runningJob(owner.workerId, { timeoutMs: 1000, startedAgoMs: 1000 + slackMs + 2000, maxAttempts: 2 });
  const kindOverdue = await runningJob(owner.workerId, { kind: 'slow', startedAgoMs: 2000 + slackMs + 2000 });
  const cancelOverdue = await runningJob(owner.workerId, { cancelAgoMs: slackMs + 2000 });
  // Past its limit or its cancel request, but within the owner's own grace: the owner ends those.
  const pastLimit = await runningJob(owner.workerId, { timeoutMs: 1000, startedAgoMs: 1500 });
  const cancelRecent = await runningJob(owner.workerId, { cancelAgoMs: 1000 });
  const unlimited = await runningJob(owner.workerId, { startedAgoMs: 60_000 });

  await recover();

  expect(await jobs([overdue, overdueWithRetry, kindOverdue, cancelOverdue, pastLimit, cancelRecent, unlimited])).toEqual([
    expect.objectContaining({ status: 'failed', error_code: 'TIMEOUT' }),
    expect.objectContaining({ status: 'queued', error_code: 'TIMEOUT' }),
    expect.objectContaining({ status: 'failed', error_code: 'TIMEOUT', error: 'the job ran longer than its timeout of 2000 ms' }),
    expect.objectContaining({ status: 'cancelled' }),
    expect.objectContaining({ status: 'running' }),
    expect.objectContaining({ status: 'running' }),
    expect.objectContaining({ status: 'running' }),
  ]);
  // The owner answers: it keeps its row and its session.
  expect(await db.query('SELECT id FROM workers')).toEqual([{ id: owner.workerId }]);
  expect(await sessionsTagged('jobql:00000000c3c3')).toHaveLength(1);
});
