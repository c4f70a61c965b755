import { afterAll, describe, expect, test } from '@jest/globals';
import { createJobqlClient, type Job, type JobqlClient, JobqlError } from '../src/client/index.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';

// jobql/client against the real app in this process: each call, its types' shapes, and its errors as
// JobqlError values with the server's code. Reconnects against killed processes: client-reconnect.test.ts.
const db = useTestDatabase();
const app = useTestApp(db);
const clients: JobqlClient[] = [];

afterAll(() => {
  for (const client of clients.splice(0)) client.dispose();
});

function client(transport: 'ws' | 'sse' = 'ws'): JobqlClient {
  const created = createJobqlClient({ url: app.url, transport });
  clients.push(created);
  return created;
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<JobqlError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (reason: unknown) => reason,
  );
  if (!(error instanceof JobqlError)) throw error;
  return error;
}

async function drain<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterator) items.push(item);
  return items;
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

test('createJob returns the job QUEUED and getJob reads it back; an unknown id is null', async () => {
  const jobs = client();
  const created = await jobs.createJob({ kind: 'echo', input: { hello: 'world' }, runAt: inAnHour() });
  expect(created).toMatchObject({ kind: 'echo', status: 'QUEUED', input: { hello: 'world' }, attempt: 0, revision: 1 });
  expect(await jobs.getJob(created.id)).toEqual(created);
  expect(await jobs.getJob('00000000-0000-4000-8000-000000000000')).toBeNull();
});

test('listJobs pages through every job, newest first, each once, until the last page', async () => {
  const jobs = client();
  const created = await jobs.createJobs(Array.from({ length: 5 }, (_, i) => ({ kind: 'echo', input: { i }, runAt: inAnHour() })));
  expect(created.map((job) => job.input)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
  const pages = await drain(jobs.listJobs({ kind: 'echo', pageSize: 2 }));
  expect(pages.every((page) => page.jobs.length <= 2)).toBe(true);
  expect(pages.map((page) => page.hasNextPage)).toEqual([...pages.slice(1).map(() => true), false]);
  const ids = pages.flatMap((page) => page.jobs.map((job) => job.id));
  expect(new Set(ids).size).toBe(ids.length);
  const createdAt = pages.flatMap((page) => page.jobs.map((job) => job.createdAt));
  expect(createdAt).toEqual([...createdAt].sort().reverse());
  // createJobs inserts in order, so the last of the batch is the newest.
  expect(ids.filter((id) => created.some((job) => job.id === id))).toEqual(created.map((job) => job.id).reverse());
});

test('cancelJob cancels a queued job, retryJob queues it again, and awaitJob returns it once it is final', async () => {
  const jobs = client();
  const job = await jobs.createJob({ kind: 'sleep', input: { ms: 50 }, runAt: inAnHour() });
  expect(await jobs.cancelJob(job.id)).toMatchObject({ id: job.id, status: 'CANCELLED' });
  expect(await jobs.retryJob(job.id)).toMatchObject({ id: job.id, status: 'QUEUED' });
  const done = await jobs.awaitJob(job.id, { timeoutMs: 30_000 });
  expect(done).toMatchObject({ id: job.id, status: 'COMPLETED', result: { sleptMs: 50 }, progress: 1 });
});

test('awaitJob returns the job as it is when its timeout runs out first', async () => {
  const jobs = client();
  const job = await jobs.createJob({ kind: 'echo', input: {}, runAt: inAnHour() });
  expect(await jobs.awaitJob(job.id, { timeoutMs: 200 })).toMatchObject({ id: job.id, status: 'QUEUED' });
});

describe('errors are JobqlError values carrying the server code', () => {
  test('an unknown kind is BAD_USER_INPUT, naming the argument', async () => {
    const error = await rejection(client().createJob({ kind: 'no-such-kind' }));
    expect(error).toBeInstanceOf(JobqlError);
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'input.kind' });
    expect(error.message).toMatch(/unknown job kind "no-such-kind"/);
  });

  test('cancelling an unknown job is NOT_FOUND; a malformed id is BAD_USER_INPUT; retrying a completed job is CONFLICT', async () => {
    const jobs = client();
    expect((await rejection(jobs.cancelJob('00000000-0000-4000-8000-000000000000'))).code).toBe('NOT_FOUND');
    expect((await rejection(jobs.getJob('not-a-uuid'))).code).toBe('BAD_USER_INPUT');
    const job = await jobs.createJob({ kind: 'echo', input: { x: 1 } });
    await jobs.awaitJob(job.id, { timeoutMs: 30_000 });
    expect((await rejection(jobs.retryJob(job.id))).code).toBe('CONFLICT');
  });

  test.each(['ws', 'sse'] as const)('watching an unknown job is NOT_FOUND over %s, without reconnecting', async (transport) => {
    const reconnects: unknown[] = [];
    const watch = client(transport).watchJob('00000000-0000-4000-8000-000000000000', { onReconnect: (event) => reconnects.push(event) });
    const error = await rejection(drain(watch));
    expect(error.code).toBe('NOT_FOUND');
    expect(reconnects).toEqual([]);
  });

  test('a server that cannot be reached is NETWORK_ERROR', async () => {
    const error = await rejection(createJobqlClient({ url: 'http://127.0.0.1:9' }).getJob('00000000-0000-4000-8000-000000000000'));
    expect(error.code).toBe('NETWORK_ERROR');
  });
});

describe.each(['ws', 'sse'] as const)('watches over %s', (transport) => {
  test('watchJob yields each revision once, in order, and ends after the final state', async () => {
    const jobs = client(transport);
    const job = await jobs.createJob({ kind: 'sleep', input: { ms: 400 } });
    const states = await drain(jobs.watchJob(job.id));
    const revisions = states.map((state) => state.revision);
    expect(revisions).toEqual(Array.from({ length: revisions.length }, (_, i) => (revisions[0] as number) + i));
    expect(states.at(-1)).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 400 }, progress: 1 });
    expect(states.filter((state) => state.status === 'COMPLETED')).toHaveLength(1);
  });

  test('watchJob from the final revision yields nothing and ends; from an earlier one, the rest', async () => {
    const jobs = client(transport);
    const job = await jobs.createJob({ kind: 'echo', input: { y: 2 } });
    const final = await jobs.awaitJob(job.id, { timeoutMs: 30_000 });
    expect(await drain(jobs.watchJob(job.id, { afterRevision: final.revision }))).toEqual([]);
    const rest = await drain(jobs.watchJob(job.id, { afterRevision: final.revision - 1 }));
    expect(rest.map((state) => [state.revision, state.status])).toEqual([[final.revision, 'COMPLETED']]);
  });

  test('watchJobs yields the changes of matching jobs as they happen', async () => {
    const jobs = client(transport);
    const feed = jobs.watchJobs({ kind: 'echo', status: 'COMPLETED' });
    // The subscription starts with the first next(), and is attached a moment later: create jobs until one
    // made after that moment comes through.
    const first = feed.next();
    let result: IteratorResult<Job> | null = null;
    while (!result) {
      await jobs.createJob({ kind: 'echo', input: { feed: true } });
      result = await Promise.race([first, new Promise<null>((resolve) => setTimeout(() => resolve(null), 500))]);
    }
    await feed.return(undefined);
    expect(result.value).toMatchObject({ kind: 'echo', status: 'COMPLETED', input: { feed: true } });
  });
});
