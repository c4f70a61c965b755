import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, test } from '@jest/globals';
import { createDatabasePool } from '../src/db/pool.ts';
import { claimNextJobs, releaseClaimedJobs } from '../src/jobs/job-queries.ts';
import { CreateJobsDocument } from './generated/graphql.ts';
import { insertJobs, useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { createServerGroup } from './helpers/server-group.ts';

// A claim takes at most the process's free slots: a burst or a backlog never makes one process run more
// jobs than its WORKER_CONCURRENCY, and a backlog is shared between the processes that are up.
const db = useTestDatabase();
const servers = createServerGroup();

afterEach(async () => {
  await servers.stopAll();
  await db.query('DELETE FROM jobs');
});

/**
 * Samples, every few milliseconds until no job is queued or running, how many jobs each worker has RUNNING
 * in the table, and returns the highest count seen per worker.
 */
async function sampleRunningPerWorker(timeoutMs = 40_000): Promise<Map<number, number>> {
  const highest = new Map<number, number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // One statement, so the counts per worker are of one moment.
    const rows = await db.query<{ worker_id: number | null; count: string }>(
      `SELECT worker_id, count(*) FROM jobs WHERE status = 'running' GROUP BY worker_id
       UNION ALL SELECT NULL, count(*) FROM jobs WHERE status IN ('queued', 'running')`,
    );
    for (const row of rows) {
      if (row.worker_id !== null) highest.set(row.worker_id, Math.max(highest.get(row.worker_id) ?? 0, Number(row.count)));
    }
    if (rows.some((row) => row.worker_id === null && row.count === '0')) return highest;
    if (Date.now() > deadline) throw new Error('timed out waiting for the jobs to finish');
    await sleep(5);
  }
}

/** What a process that runs only `sleep`, with `free` slots, asks of a claim. */
const sleepKind = (free: number) => [{ kind: 'sleep', free, maxAttempts: 1, timeoutMs: null }];

async function seedQueuedSleepJobs(count: number, ms: number): Promise<void> {
  await insertJobs(db, count, { kind: 'sleep', input: { ms } });
}

test('a burst of jobs never makes a process run more jobs at once than its WORKER_CONCURRENCY', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '2' });
  // One createJobs: 30 jobs queued in one commit, one wake-up of an idle runner with 2 free slots.
  await data(server.url, CreateJobsDocument, { inputs: Array.from({ length: 30 }, () => ({ kind: 'sleep', input: { ms: 150 } })) });
  const highest = await sampleRunningPerWorker();
  expect([...highest.values()].length).toBe(1);
  expect(Math.max(...highest.values())).toBe(2);
  const [row] = await db.query<{ completed: string }>("SELECT count(*) FILTER (WHERE status = 'completed') AS completed FROM jobs");
  expect(row?.completed).toBe('30');
});

test('two processes share a backlog, each within its WORKER_CONCURRENCY', async () => {
  await seedQueuedSleepJobs(40, 150);
  const started = servers.startAll({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '2' }, { DATABASE_URL: db.url, WORKER_CONCURRENCY: '2' });
  const highest = await sampleRunningPerWorker();
  await started;
  expect(Math.max(...highest.values())).toBeLessThanOrEqual(2);
  const rows = await db.query<{ worker_id: number; count: string }>(
    "SELECT worker_id, count(*) FROM jobs WHERE status = 'completed' GROUP BY worker_id",
  );
  // Both processes ran some of the jobs: neither's claim took the whole backlog.
  expect(rows).toHaveLength(2);
  expect(rows.reduce((sum, row) => sum + Number(row.count), 0)).toBe(40);
});

test('jobs a process claimed but cannot run go back to the queue as they were, the claim guard holding', async () => {
  await seedQueuedSleepJobs(3, 10);
  const pool = await createDatabasePool(db.url, 2);
  try {
    const claimed = await claimNextJobs(pool, 7, 3, sleepKind(3));
    expect(claimed.map((job) => [job.status, job.attempt, job.workerId])).toEqual([
      ['running', 1, 7],
      ['running', 1, 7],
      ['running', 1, 7],
    ]);
    const [first, second, third] = claimed.map((job) => ({ id: job.id, workerId: 7, attempt: job.attempt }));
    if (!first || !second || !third) throw new Error('expected three claims');
    // A stale claim (another worker, another attempt) changes nothing.
    expect(
      await releaseClaimedJobs(pool, [
        { ...first, workerId: 8 },
        { ...second, attempt: 2 },
      ]),
    ).toBe(0);
    expect(await releaseClaimedJobs(pool, [first, second])).toBe(2);
    const rows = await db.query<{ id: string; status: string; attempt: number; worker_id: number | null }>(
      'SELECT id, status, attempt, worker_id FROM jobs',
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(first.id)).toMatchObject({ status: 'queued', attempt: 0, worker_id: null });
    expect(byId.get(second.id)).toMatchObject({ status: 'queued', attempt: 0, worker_id: null });
    expect(byId.get(third.id)).toMatchObject({ status: 'running', attempt: 1, worker_id: 7 });
    // Released jobs are claimable again at once.
    expect((await claimNextJobs(pool, 9, 5, sleepKind(5))).map((job) => job.id).sort()).toEqual([first.id, second.id].sort());
  } finally {
    await pool.end();
  }
});
