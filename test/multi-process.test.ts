import { afterEach, expect, test } from '@jest/globals';
import { CancelJobDocument, CreateJobDocument, GetJobDocument } from './generated/graphql.ts';
import { attachDatabase, freshDatabaseUrl, useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { waitFor } from './helpers/wait.ts';

// Several processes share one database: claims never overlap, and a process starting up leaves the
// running jobs of a live one alone.
const db = useTestDatabase();
const servers = createServerGroup();

afterEach(async () => {
  await servers.stopAll();
});

test('two processes on one database run 200 jobs with no job run twice', async () => {
  const processes = await servers.startAll(
    { DATABASE_URL: db.url, WORKER_CONCURRENCY: '4' },
    { DATABASE_URL: db.url, WORKER_CONCURRENCY: '4' },
  );
  const urls = processes.map((p) => p.url);
  // Half the jobs sleep a little, so neither process can drain the queue alone before the other claims.
  const inputs = Array.from({ length: 200 }, (_, i) =>
    i % 2 === 0 ? { kind: 'echo', input: { i } } : { kind: 'sleep', input: { ms: 20 } },
  );
  const ids: string[] = [];
  for (let i = 0; i < inputs.length; i += 10) {
    const batch = inputs.slice(i, i + 10);
    const created = await Promise.all(batch.map((input, j) => data(urls[(i + j) % urls.length] as string, CreateJobDocument, { input })));
    ids.push(...created.map(({ createJob }) => createJob.id));
  }
  expect(new Set(ids).size).toBe(200);

  await waitFor('all 200 jobs to complete', async () => {
    const [row] = await db.query<{ count: string }>("SELECT count(*) FROM jobs WHERE status <> 'completed'");
    return row?.count === '0' ? true : undefined;
  });

  const rows = await db.query<{ id: string; status: string; attempt: number; worker_id: number }>(
    'SELECT id, status, attempt, worker_id FROM jobs',
  );
  expect(rows).toHaveLength(200);
  expect(rows.filter((row) => row.status !== 'completed' || row.attempt !== 1)).toEqual([]);
  expect(new Set(rows.map((row) => row.worker_id)).size).toBe(2);

  // Each job was started exactly once across both processes, by the worker its row names.
  const startedLines = () => processes.flatMap((p) => p.logs.filter((entry) => entry.msg === 'job started'));
  await waitFor('both logs to show 200 job starts', async () => (startedLines().length >= 200 ? true : undefined));
  const started = startedLines();
  expect(started).toHaveLength(200);
  const workerOfRow = new Map(rows.map((row) => [row.id, row.worker_id]));
  expect(new Map(started.map((entry) => [entry.jobId as string, entry.workerId]))).toEqual(workerOfRow);
  expect(processes.every((p) => p.logs.some((entry) => entry.msg === 'job started'))).toBe(true);
});

test('a starting process does not touch the running jobs of a live process', async () => {
  const a = await servers.start({ DATABASE_URL: db.url });
  // A job that outlasts B's start however slow the machine is; it is cancelled at the end.
  const { createJob } = await data(a.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 600_000 } } });
  const running = await waitForJob(a.url, createJob.id, 'RUNNING');

  const b = await servers.start({ DATABASE_URL: db.url });
  const { job } = await data(b.url, GetJobDocument, { id: createJob.id });
  expect(job).toMatchObject({ status: 'RUNNING', startedAt: running.startedAt, attempt: 1, error: null });
  expect(b.logs.map((entry) => entry.msg)).not.toContain('recovered the running jobs of processes that are gone');

  // Still A's one run: cancelled through B, it ends as that attempt, never started again.
  await data(b.url, CancelJobDocument, { id: createJob.id });
  const done = await waitForJob(b.url, createJob.id, 'CANCELLED');
  expect(done).toMatchObject({ attempt: 1, startedAt: running.startedAt });
  expect(b.logs.filter((entry) => entry.msg === 'job started' && entry.jobId === createJob.id)).toEqual([]);
});

test('two processes started at the same moment on a database that does not exist yet both come up', async () => {
  const fresh = attachDatabase(freshDatabaseUrl());
  try {
    const [a, b] = await servers.startAll({ DATABASE_URL: fresh.url }, { DATABASE_URL: fresh.url });
    if (!a || !b) throw new Error('expected two processes');
    const { createJob } = await data(a.url, CreateJobDocument, { input: { kind: 'echo', input: { fresh: true } } });
    expect(await waitForJob(b.url, createJob.id, 'COMPLETED')).toMatchObject({ result: { fresh: true } });
    const [migrations] = await fresh.query<{ count: string }>('SELECT count(*) FROM migrations');
    expect(Number(migrations?.count)).toBeGreaterThan(0);
  } finally {
    await servers.stopAll();
    await fresh.drop();
  }
});
