import { afterEach, describe, expect, test } from '@jest/globals';
import { createJobqlClient, type Job, type JobqlClient, type ReconnectEvent } from '../src/client/index.ts';
import { useTestDatabase } from './helpers/database.ts';
import { freePort } from './helpers/free-port.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { waitFor } from './helpers/wait.ts';

// jobql/client's watchJob across the loss of the server it watches through, with real processes on one
// database: the iterator reconnects (to a new process on the same port) and resumes after the last revision
// it yielded. What it yields is compared with the job's event log, the server's own record of every revision.
const db = useTestDatabase();
const servers = createServerGroup();
const clients: JobqlClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.dispose();
  await servers.stopAll();
});

function client(url: string, transport: 'ws' | 'sse'): JobqlClient {
  // Short waits between reconnects: the new process is up within seconds.
  const created = createJobqlClient({ url, transport, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
  clients.push(created);
  return created;
}

type Watched = { states: Job[]; reconnects: ReconnectEvent[]; done: Promise<void> };

function watch(jobs: JobqlClient, id: string): Watched {
  const watched: Watched = { states: [], reconnects: [], done: Promise.resolve() };
  watched.done = (async () => {
    for await (const state of jobs.watchJob(id, { onReconnect: (event) => watched.reconnects.push(event) })) watched.states.push(state);
  })();
  return watched;
}

const halfway = (watched: Watched) => async () =>
  watched.states.some((state) => state.status === 'RUNNING' && (state.progress ?? 0) >= 0.25) ? true : undefined;

/** The job's event log from `revision` on: what a gap-free watch must have yielded. */
async function loggedFrom(id: string, revision: number): Promise<Array<[number, string]>> {
  const rows = await db.query<{ revision: number; status: string }>(
    'SELECT revision, status FROM job_events WHERE job_id = $1 AND revision >= $2 ORDER BY revision',
    [id, revision],
  );
  return rows.map((row) => [row.revision, row.status.toUpperCase()]);
}

function expectGapFreeAndFinal(watched: Watched) {
  const revisions = watched.states.map((state) => state.revision);
  expect(revisions).toEqual(Array.from({ length: revisions.length }, (_, i) => (revisions[0] as number) + i));
  expect(watched.states.filter((state) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(state.status))).toHaveLength(1);
  // Each reconnect resumed after a revision the iterator had yielded.
  expect(watched.reconnects.length).toBeGreaterThan(0);
  for (const event of watched.reconnects) expect(revisions).toContain(event.afterRevision);
}

describe.each(['ws', 'sse'] as const)('over %s', (transport) => {
  test('watchJob survives a SIGKILL of the server mid-job: strictly increasing, gap-free revisions, ending with the final state', async () => {
    const env = { DATABASE_URL: db.url, PORT: String(await freePort()), WORKER_CONCURRENCY: '1', RETRY_BACKOFF_MS: '100' };
    const first = await servers.start(env);
    const jobs = client(first.url, transport);
    // Two attempts: the one the kill interrupts, and the one the next process runs to the end.
    const job = await jobs.createJob({ kind: 'sleep', input: { ms: 4000 }, maxAttempts: 2 });
    const watched = watch(jobs, job.id);
    await waitFor('the job to be a quarter done', halfway(watched), 30_000);
    await first.kill('SIGKILL');
    const yieldedBeforeKill = watched.states.length;
    // Its startup recovery puts the job back in the queue before it listens, while the client is away.
    await servers.start(env);
    await watched.done;

    expectGapFreeAndFinal(watched);
    expect(watched.states.at(-1)).toMatchObject({ status: 'COMPLETED', attempt: 2, result: { sleptMs: 4000 }, progress: 1 });
    expect(watched.states.length).toBeGreaterThan(yieldedBeforeKill);
    // The interruption itself is in the sequence: the job back in the queue with the first attempt's error.
    expect(watched.states.find((state) => state.status === 'QUEUED' && state.attempt === 1)).toMatchObject({
      lastError: { code: 'INTERRUPTED' },
    });
    expect(watched.states.map((state) => [state.revision, state.status])).toEqual(
      await loggedFrom(job.id, (watched.states[0] as Job).revision),
    );
  });

  test('watchJob survives a graceful stop of the process it watches through while another process runs the job', async () => {
    const api = { DATABASE_URL: db.url, PORT: String(await freePort()), WORKER_CONCURRENCY: '0' };
    const [front] = await servers.startAll(api, { DATABASE_URL: db.url, WORKER_CONCURRENCY: '1' });
    const jobs = client((front as { url: string }).url, transport);
    const job = await jobs.createJob({ kind: 'sleep', input: { ms: 3000 } });
    const watched = watch(jobs, job.id);
    await waitFor('the job to be a quarter done', halfway(watched), 30_000);
    // A graceful stop completes open streams; the job is not final, so the client must come back for the rest.
    expect(await front?.kill('SIGTERM')).toBe(0);
    await servers.start(api);
    await watched.done;

    expectGapFreeAndFinal(watched);
    expect(watched.states.at(-1)).toMatchObject({ status: 'COMPLETED', attempt: 1, result: { sleptMs: 3000 } });
    expect(watched.states.map((state) => [state.revision, state.status])).toEqual(
      await loggedFrom(job.id, (watched.states[0] as Job).revision),
    );
  });
});
