import { afterEach, expect, test } from '@jest/globals';
import { CancelJobDocument, CreateJobDocument } from './generated/graphql.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';
import type { ServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// A process stopped with SIGSTOP keeps its TCP connections (the kernel answers keepalives for it), so its
// advisory lock stays held: only the heartbeat it no longer writes tells the others that it is not answering.
const db = useTestDatabase();
const servers = createServerGroup();
const LEASE_MS = 3000;
// Recovery is due one lease after the last heartbeat, found by a recovery pass (every lease/3); the rest of
// the bound is room for a loaded 2-core machine, not a figure (see README for what to expect).
const WITHIN_MS = 15_000;

afterEach(async () => {
  // SIGKILL also ends a stopped process.
  await servers.stopAll();
});

const env = (extra: Record<string, string>) => ({
  DATABASE_URL: db.url,
  JOB_LEASE_MS: String(LEASE_MS),
  RETRY_BACKOFF_MS: '50',
  ABORT_GRACE_MS: '500',
  ...extra,
});

async function workerOf(jobId: string): Promise<number> {
  const [row] = await db.query<{ worker_id: number }>('SELECT worker_id FROM jobs WHERE id = $1', [jobId]);
  return row?.worker_id as number;
}

/** Backends of the process that registered `workerId`, found by the application_name its connections carry. */
async function sessionsOfWorker(workerId: number): Promise<Array<{ application_name: string }>> {
  return db.query(
    `SELECT a.application_name FROM pg_stat_activity a JOIN workers w ON a.application_name LIKE w.session_tag || ':%'
     WHERE w.id = $1 AND a.datname = current_database()`,
    [workerId],
  );
}

test('a frozen process: its job is recovered within the lease, its sessions are ended, and after SIGCONT it neither overwrites the result nor stays dead', async () => {
  const [a, b] = (await servers.startAll(env({ WORKER_CONCURRENCY: '1' }), env({ WORKER_CONCURRENCY: '0' }))) as [
    ServerProcess,
    ServerProcess,
  ];
  // Attempt 1 runs on A; the retry can only run on C, started later, so the test decides the order.
  const { createJob: job } = await data(a.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 4000 }, maxAttempts: 2 } });
  await waitForJob(b.url, job.id, 'RUNNING');
  const frozenWorker = await workerOf(job.id);
  const [registered] = await db.query<{ session_tag: string }>('SELECT session_tag FROM workers WHERE id = $1', [frozenWorker]);
  const sessionsBefore = await sessionsOfWorker(frozenWorker);
  expect(sessionsBefore.map((s) => s.application_name).sort()).toEqual(
    expect.arrayContaining([`${registered?.session_tag}:listener`, `${registered?.session_tag}:session`]),
  );

  a.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  const requeued = await waitForJob(b.url, job.id, 'QUEUED', { timeoutMs: WITHIN_MS });
  const recoveredAfterMs = Date.now() - frozenAt;
  expect(requeued).toMatchObject({ attempt: 1, lastError: { code: 'INTERRUPTED' } });
  expect(b.logs).toContainEqual(
    expect.objectContaining({ msg: 'recovered the jobs of processes that stopped answering', jobIds: [job.id] }),
  );
  // While A is still stopped, its lock session, listener and pool connections are gone from the server.
  const remaining = await db.query<{ application_name: string }>(
    'SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1',
    [`${registered?.session_tag}:%`],
  );
  expect(remaining).toEqual([]);
  expect(await db.query('SELECT id FROM workers WHERE id = $1', [frozenWorker])).toEqual([]);

  // Attempt 2 on C; A resumes while it runs. A's own timer has long finished its sleep: its completion must
  // change nothing.
  const c = await servers.start(env({ WORKER_CONCURRENCY: '1' }));
  await waitFor('attempt 2 to run', async () => {
    const [row] = await db.query<{ attempt: number; status: string }>('SELECT attempt, status FROM jobs WHERE id = $1', [job.id]);
    return row?.attempt === 2 && row.status === 'running' ? true : undefined;
  });
  a.child.kill('SIGCONT');
  const done = await waitForJob(c.url, job.id, 'COMPLETED', { timeoutMs: 20_000 });
  expect(done).toMatchObject({ attempt: 2, result: { sleptMs: 4000 }, lastError: { code: 'INTERRUPTED' } });
  const completions = await db.query("SELECT revision FROM job_events WHERE job_id = $1 AND status = 'completed'", [job.id]);
  expect(completions).toHaveLength(1);

  // A found out it had been declared dead, and came back under a new worker id: with B and C gone, a new
  // job can only run on A.
  const rejoined = await waitFor('A to open a new worker session', async () =>
    a.logs.find((entry) => entry.msg === 'worker session open' && entry.workerId !== frozenWorker),
  );
  expect(a.logs).toContainEqual(
    expect.objectContaining({ msg: "worker session lost; aborting this process's running jobs", workerId: frozenWorker }),
  );
  await c.kill('SIGKILL');
  const { createJob: next } = await data(a.url, CreateJobDocument, { input: { kind: 'echo', input: { after: 'resume' } } });
  const nextDone = await waitForJob(a.url, next.id, 'COMPLETED');
  expect(nextDone.result).toEqual({ after: 'resume' });
  expect(await workerOf(next.id)).toBe(rejoined.workerId);
  process.stdout.write(`frozen process: job recovered ${recoveredAfterMs} ms after SIGSTOP (JOB_LEASE_MS=${LEASE_MS})\n`);
}, 90_000);

test('timeoutMs and cancelJob are honoured for the jobs of a frozen process, and a frozen API-only process loses its sessions too', async () => {
  const [a, b, c] = (await servers.startAll(
    env({ WORKER_CONCURRENCY: '2' }),
    env({ WORKER_CONCURRENCY: '0' }),
    env({ WORKER_CONCURRENCY: '0' }),
  )) as [ServerProcess, ServerProcess, ServerProcess];
  const { createJob: timed } = await data(b.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 }, timeoutMs: 1000 } });
  const { createJob: cancelled } = await data(b.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  await waitForJob(b.url, timed.id, 'RUNNING');
  await waitForJob(b.url, cancelled.id, 'RUNNING');
  a.child.kill('SIGSTOP');
  // C runs no jobs, but its stalled listener would hold PostgreSQL's notification queue for everyone.
  c.child.kill('SIGSTOP');
  const { cancelJob } = await data(b.url, CancelJobDocument, { id: cancelled.id });
  expect(cancelJob.status).toBe('RUNNING');

  const [timedOut, cancelledJob] = await Promise.all([
    waitForJob(b.url, timed.id, 'FAILED', { timeoutMs: WITHIN_MS }),
    waitForJob(b.url, cancelled.id, 'CANCELLED', { timeoutMs: WITHIN_MS }),
  ]);
  expect(timedOut.error).toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('1000 ms') });
  expect(cancelledJob.result).toBeNull();

  const opened = c.logs.find((entry) => entry.msg === 'worker session open') as { sessionTag: string; workerId: number };
  await waitFor(
    "the frozen API-only process's sessions to be terminated",
    async () => {
      const rows = await db.query('SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1', [`${opened.sessionTag}:%`]);
      return rows.length === 0 ? true : undefined;
    },
    WITHIN_MS,
  );
  a.child.kill('SIGCONT');
  c.child.kill('SIGCONT');
  // C comes back under a new worker id and serves again.
  await waitFor('C to rejoin', async () =>
    c.logs.some((entry) => entry.msg === 'worker session open' && entry.workerId !== opened.workerId) ? true : undefined,
  );
  expect((await waitForJob(c.url, cancelled.id, 'CANCELLED')).id).toBe(cancelled.id);
}, 90_000);
