import { afterEach, expect, test } from '@jest/globals';
import { CancelJobDocument, CreateJobDocument, CreateJobsDocument } from './generated/graphql.ts';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';
import type { ServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// Several real server processes on one database, started, stopped and killed independently.
const db = useTestDatabase();
const servers = createServerGroup();

afterEach(async () => {
  await servers.stopAll();
});

const env = (extra: Record<string, string>) => ({ DATABASE_URL: db.url, JOB_LEASE_MS: '3000', RETRY_BACKOFF_MS: '50', ...extra });

test('a process SIGKILLed mid-job while another stays up: the job is FAILED/INTERRUPTED within JOB_LEASE_MS, with no restart', async () => {
  const [a, b] = (await servers.startAll(env({ WORKER_CONCURRENCY: '1' }), env({ WORKER_CONCURRENCY: '0' }))) as [
    ServerProcess,
    ServerProcess,
  ];
  const { createJob } = await data(a.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  await waitForJob(b.url, createJob.id, 'RUNNING');
  await a.kill('SIGKILL');
  // B only serves the API; its maintenance recovers the dead process's job. waitFor's bound is far above the lease.
  const job = await waitForJob(b.url, createJob.id, 'FAILED', { timeoutMs: 10_000 });
  expect(job.error).toMatchObject({ code: 'INTERRUPTED', message: expect.stringMatching(/interrupted/i) });
  expect(b.logs).toContainEqual(
    expect.objectContaining({ msg: 'recovered the running jobs of processes that are gone', jobIds: [createJob.id] }),
  );
});

test('with maxAttempts 2 the SIGKILLed job is queued again and completed by the process that stayed up', async () => {
  const [a, b] = (await servers.startAll(env({ WORKER_CONCURRENCY: '1' }), env({ WORKER_CONCURRENCY: '0' }))) as [
    ServerProcess,
    ServerProcess,
  ];
  const { createJob } = await data(a.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 1500 }, maxAttempts: 2 } });
  await waitForJob(b.url, createJob.id, 'RUNNING');
  await a.kill('SIGKILL');
  const c = await servers.start(env({ WORKER_CONCURRENCY: '2' }));
  const job = await waitForJob(c.url, createJob.id, 'COMPLETED', { timeoutMs: 20_000 });
  expect(job).toMatchObject({ attempt: 2, result: { sleptMs: 1500 }, lastError: { code: 'INTERRUPTED' } });
});

test('a cancel sent to one process stops the job where another process runs it', async () => {
  const [runner, api] = (await servers.startAll(env({ WORKER_CONCURRENCY: '1' }), env({ WORKER_CONCURRENCY: '0' }))) as [
    ServerProcess,
    ServerProcess,
  ];
  const { createJob } = await data(api.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  await waitForJob(api.url, createJob.id, 'RUNNING');
  const { cancelJob } = await data(api.url, CancelJobDocument, { id: createJob.id });
  expect(cancelJob.cancelRequestedAt).not.toBeNull();
  const job = await waitForJob(api.url, createJob.id, 'CANCELLED');
  expect(job.result).toBeNull();
  await waitFor('the runner to log the end', async () =>
    runner.logs.some((entry) => entry.msg === 'job cancelled' && entry.jobId === createJob.id) ? true : undefined,
  );
});

test('50 concurrent createJob calls with one idempotency key, spread over two processes, make exactly one row', async () => {
  const processes = await servers.startAll(env({ WORKER_CONCURRENCY: '0' }), env({ WORKER_CONCURRENCY: '0' }));
  const created = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      data((processes[i % 2] as ServerProcess).url, CreateJobDocument, {
        input: { kind: 'echo', input: { order: 7 }, idempotencyKey: 'two-processes' },
      }),
    ),
  );
  expect(new Set(created.map(({ createJob }) => createJob.id)).size).toBe(1);
  const rows = await db.query<{ count: string }>('SELECT count(*) FROM jobs WHERE idempotency_key = $1', ['two-processes']);
  expect(rows[0]?.count).toBe('1');
});

test('5,000 jobs through three processes with random SIGKILLs: every job ends, and no job ever ran twice at once', async () => {
  // A database of its own, so that the counts below are this test's jobs only.
  const own = await createTestDatabase();
  try {
    await churn(own);
  } finally {
    await servers.stopAll();
    await own.drop();
  }
  // Seven server starts, 5,000 jobs and the checks took over 120 s on a 2-core machine under a load of 15.
}, 240_000);

async function churn(db: TestDatabase): Promise<void> {
  const env = (extra: Record<string, string>) => ({ DATABASE_URL: db.url, RETRY_BACKOFF_MS: '50', ...extra });
  const extra = { WORKER_CONCURRENCY: '8', POLL_INTERVAL_MS: '200', JOB_LEASE_MS: '3000' };
  const live: ServerProcess[] = await servers.startAll(env(extra), env(extra), env(extra));
  const everyone: ServerProcess[] = [...live];
  const killedAt = new Map<ServerProcess, number>();
  // 5,000 jobs in batches of 1,000; one in five sleeps a little so that kills land mid-job.
  for (let batch = 0; batch < 5; batch++) {
    const inputs = Array.from({ length: 1000 }, (_, i) =>
      i % 5 === 0 ? { kind: 'sleep', input: { ms: 20 }, maxAttempts: 10 } : { kind: 'echo', input: { batch, i }, maxAttempts: 10 },
    );
    await data((live[batch % live.length] as ServerProcess).url, CreateJobsDocument, { inputs });
  }
  // Four times: SIGKILL a random process and start a replacement.
  for (let round = 0; round < 4; round++) {
    await new Promise((resolve) => setTimeout(resolve, 600));
    const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0] as ServerProcess;
    killedAt.set(victim, Date.now());
    await victim.kill('SIGKILL');
    const replacement = await servers.start(env(extra));
    live.push(replacement);
    everyone.push(replacement);
  }
  await waitFor(
    'every job to end',
    async () => {
      const [row] = await db.query<{ count: string }>("SELECT count(*) FROM jobs WHERE status NOT IN ('completed', 'failed', 'cancelled')");
      return row?.count === '0' ? true : undefined;
    },
    60_000,
  );
  const [counts] = await db.query<{ total: string; completed: string }>(
    "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'completed') AS completed FROM jobs",
  );
  expect(counts).toEqual({ total: '5000', completed: '5000' });

  // Executions as the processes themselves logged them: from 'job started' to the attempt's end line, or to the
  // SIGKILL for a process killed mid-job. For each job, no execution may begin before the previous one ended.
  const ends = new Set(['job completed', 'job failed', 'job cancelled', 'job queued for another attempt']);
  const executions = new Map<string, Array<{ start: number; end: number }>>();
  for (const process of everyone) {
    const open = new Map<string, number>();
    for (const entry of process.logs) {
      const jobId = entry.jobId as string | undefined;
      if (!jobId) continue;
      const at = Date.parse(entry.time as string);
      if (entry.msg === 'job started') open.set(jobId, at);
      else if (ends.has(entry.msg as string) && open.has(jobId)) {
        const list = executions.get(jobId) ?? [];
        list.push({ start: open.get(jobId) as number, end: at });
        executions.set(jobId, list);
        open.delete(jobId);
      }
    }
    for (const [jobId, start] of open) {
      const end = killedAt.get(process);
      expect(end).toBeDefined(); // only a killed process leaves executions without an end
      const list = executions.get(jobId) ?? [];
      list.push({ start, end: end as number });
      executions.set(jobId, list);
    }
  }
  expect(executions.size).toBe(5000);
  let overlaps = 0;
  for (const list of executions.values()) {
    list.sort((x, y) => x.start - y.start);
    for (let i = 1; i < list.length; i++) {
      if ((list[i] as { start: number }).start < (list[i - 1] as { end: number }).end) overlaps++;
    }
  }
  expect(overlaps).toBe(0);
  // The database agrees: every execution the logs show was a claim (attempt). A claim can exceed the
  // executions only where a process was killed between committing its claim and logging the start: at most
  // one batch of slots per kill.
  const attempts = await db.query<{ id: string; attempt: number }>('SELECT id, attempt FROM jobs');
  const moreExecutionsThanClaims = attempts.filter((row) => (executions.get(row.id)?.length ?? 0) > row.attempt);
  expect(moreExecutionsThanClaims).toEqual([]);
  const unloggedClaims = attempts.reduce((sum, row) => sum + row.attempt - (executions.get(row.id)?.length ?? 0), 0);
  expect(unloggedClaims).toBeLessThanOrEqual(killedAt.size * Number(extra.WORKER_CONCURRENCY));
  // The kills did land mid-job: some jobs needed more than one attempt.
  expect(attempts.filter((row) => row.attempt > 1).length).toBeGreaterThan(0);
}
