import { afterAll, describe, expect, test } from '@jest/globals';
import {
  createJobqlClient,
  type Job,
  type JobqlClient,
  type JobqlClientOptions,
  JobqlError,
  type ReconnectEvent,
} from '../src/client/index.ts';
import { useTestApp } from './helpers/app.ts';
import { drain, rejection } from './helpers/client-results.ts';
import { useTestDatabase } from './helpers/database.ts';
import { startDatabaseProxy } from './helpers/db-proxy.ts';
import { scrape } from './helpers/metrics.ts';
import { waitFor } from './helpers/wait.ts';

// jobql/client against the real app in this process: each call, its types' shapes, and its errors as
// JobqlError values with the server's code. Reconnects against killed processes: client-reconnect.test.ts.
const db = useTestDatabase();
const app = useTestApp(db);
const clients: JobqlClient[] = [];

afterAll(() => {
  for (const client of clients.splice(0)) client.dispose();
});

function client(transport: 'ws' | 'sse' = 'ws', options: Partial<JobqlClientOptions> = {}): JobqlClient {
  const created = createJobqlClient({ url: app.url, transport, reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, ...options });
  clients.push(created);
  return created;
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
  test('watchJob takes a connection that falls silent for a dropped one: it reconnects and misses nothing', async () => {
    // The proxy holds every byte (a NAT that forgot the flow): nothing arrives and nothing closes.
    const proxy = await startDatabaseProxy(app.url);
    try {
      const jobs = client(transport, { url: proxy.url, heartbeatTimeoutMs: 1500 });
      const job = await jobs.createJob({ kind: 'sleep', input: { ms: 8000 } });
      const states: Job[] = [];
      const reconnects: ReconnectEvent[] = [];
      // What the job was doing when the watch gave up: still RUNNING unless the silence went unnoticed until the
      // job ended and the server closed the stream.
      let statusAtReconnect: Promise<string | undefined> | undefined;
      const onReconnect = (event: ReconnectEvent) => {
        reconnects.push(event);
        statusAtReconnect ??= client()
          .getJob(job.id)
          .then((current) => current?.status);
      };
      const done = (async () => {
        for await (const state of jobs.watchJob(job.id, { onReconnect })) states.push(state);
      })();
      await waitFor('the job to be a quarter done', async () => (states.some((s) => (s.progress ?? 0) >= 0.25) ? true : undefined));
      proxy.pause();
      await waitFor('the watch to give up on the silent connection', async () => (reconnects.length > 0 ? true : undefined));
      expect(await statusAtReconnect).toBe('RUNNING');
      await proxy.resume();
      await done;
      const revisions = states.map((state) => state.revision);
      expect(revisions).toEqual(Array.from({ length: revisions.length }, (_, i) => (revisions[0] as number) + i));
      expect(states.at(-1)).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 8000 } });
      expect(reconnects[0]?.error?.code).toBe('NETWORK_ERROR');
    } finally {
      await proxy.close();
    }
  });

  test('leaving a watch (break, or its signal aborted) ends its subscription on the server', async () => {
    const jobs = client(transport);
    const job = await jobs.createJob({ kind: 'echo', input: {}, runAt: inAnHour() });
    const active = async () => (await scrape(app.url)).value('jobql_subscriptions_active');
    // Earlier tests' watches have all ended: none may be left open on the server.
    const idle = await waitFor('no subscription left open', async () => ((await active()) === 0 ? 0 : undefined));
    for await (const state of jobs.watchJob(job.id)) {
      expect(state.status).toBe('QUEUED');
      expect(await active()).toBe(idle + 1);
      break;
    }
    await waitFor('the subscription to end after break', async () => ((await active()) === idle ? true : undefined));
    const abort = new AbortController();
    const statuses: string[] = [];
    const watched = (async () => {
      for await (const state of jobs.watchJob(job.id, { signal: abort.signal })) statuses.push(state.status);
    })();
    await waitFor('the snapshot', async () => (statuses.length > 0 ? true : undefined));
    expect(await active()).toBe(idle + 1);
    abort.abort();
    await watched;
    expect(statuses).toEqual(['QUEUED']);
    await waitFor('the subscription to end after abort', async () => ((await active()) === idle ? true : undefined));
  });

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
  test('watchJob survives a network cut: it reconnects to the same server and resumes after its last revision', async () => {
    // A TCP proxy (the one the database tests use) between the client and the server, cut mid-job.
    const proxy = await startDatabaseProxy(app.url);
    try {
      const jobs = client(transport, { url: proxy.url });
      const job = await jobs.createJob({ kind: 'sleep', input: { ms: 2000 } });
      const states: Job[] = [];
      const reconnects: ReconnectEvent[] = [];
      const done = (async () => {
        for await (const state of jobs.watchJob(job.id, { onReconnect: (event) => reconnects.push(event) })) states.push(state);
      })();
      await waitFor('the job to be a quarter done', async () => (states.some((s) => (s.progress ?? 0) >= 0.25) ? true : undefined));
      await proxy.cut();
      // Revisions are written while the client is away; they must come from the server's event log.
      const away = states.at(-1)?.revision as number;
      await waitFor('the job to move on', async () => ((await client().getJob(job.id))?.revision ?? 0) > away + 2 || undefined);
      await proxy.resume();
      await done;
      const revisions = states.map((state) => state.revision);
      expect(revisions).toEqual(Array.from({ length: revisions.length }, (_, i) => (revisions[0] as number) + i));
      expect(states.at(-1)).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 2000 } });
      expect(reconnects.length).toBeGreaterThan(0);
      // It resumed after the last revision it had yielded (at least the one it had when the cut came).
      expect(reconnects[0]?.error?.code).toBe('NETWORK_ERROR');
      expect(revisions).toContain(reconnects[0]?.afterRevision);
      expect(reconnects[0]?.afterRevision).toBeGreaterThanOrEqual(away);
    } finally {
      await proxy.close();
    }
  });
});
