import { afterEach, expect, test } from '@jest/globals';
import type { Client } from 'graphql-ws';
import {
  CreateJobDocument,
  JobUpdatedDocument,
  type JobUpdatedSubscription,
  type JobUpdatedSubscriptionVariables,
} from './generated/graphql.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { waitFor } from './helpers/wait.ts';

// Live status across real server processes sharing one database.
const db = useTestDatabase();
const servers = createServerGroup();
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
  await servers.stopAll();
});

function client(url: string): Client {
  const created = wsClient(url);
  clients.push(created);
  return created;
}

test('a subscriber on process B sees every transition of a job created on process A and run by process C', async () => {
  const [a, b] = await servers.startAll(
    { DATABASE_URL: db.url, WORKER_CONCURRENCY: '0' },
    { DATABASE_URL: db.url, WORKER_CONCURRENCY: '0' },
  );
  const { createJob } = await data((a as { url: string }).url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 600 } } });
  const stream = collect(client((b as { url: string }).url), JobUpdatedDocument, { id: createJob.id });
  await waitFor('the snapshot', async () => (stream.results.length > 0 ? true : undefined));
  // Only now does a process that runs jobs start: everything after the snapshot happens elsewhere.
  await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '2' });
  expect(await stream.done).toEqual({ completed: true });
  const events = stream.results.map((result) => result.data?.jobUpdated);
  const revisions = events.map((job) => job?.revision as number);
  expect(revisions).toEqual(Array.from({ length: revisions.length }, (_, i) => (revisions[0] as number) + i));
  const statuses = [...new Set(events.map((job) => job?.status))];
  expect(statuses).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
  expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 600 }, progress: 1 });
});

test('1,000 concurrent subscribers to one job on one process all receive its completion', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '2' });
  const { createJob } = await data(server.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 3000 } } });
  // Ten connections of a hundred subscriptions each (a connection may hold at most 100 at once).
  const streams: ReturnType<typeof collect<JobUpdatedSubscription, JobUpdatedSubscriptionVariables>>[] = [];
  for (let c = 0; c < 10; c++) {
    const connection = client(server.url);
    for (let s = 0; s < 100; s++) streams.push(collect(connection, JobUpdatedDocument, { id: createJob.id }));
  }
  await waitFor(
    'every subscriber to have its snapshot',
    async () => (streams.every((s) => s.results.length > 0) ? true : undefined),
    30_000,
  );
  const ends = await Promise.all(streams.map((s) => s.done));
  expect(ends.filter((end) => !('completed' in end))).toEqual([]);
  const finals = streams.map((s) => s.results.at(-1)?.data?.jobUpdated);
  expect(finals.filter((job) => job?.status !== 'COMPLETED' || (job.result as { sleptMs?: number })?.sleptMs !== 3000)).toEqual([]);
});

test('subscriptions past the per-connection and per-process caps get LIMIT_EXCEEDED, and the others keep working', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '1', MAX_SUBSCRIPTIONS: '102' });
  const { createJob } = await data(server.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 1500 } } });
  const first = client(server.url);
  const held = Array.from({ length: 100 }, () => collect(first, JobUpdatedDocument, { id: createJob.id }));
  await waitFor('100 snapshots', async () => (held.every((s) => s.results.length > 0) ? true : undefined));
  const overConnection = collect(first, JobUpdatedDocument, { id: createJob.id });
  const end = await overConnection.done;
  expect('error' in end && (end.error as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');

  const second = client(server.url);
  const withinProcess = Array.from({ length: 2 }, () => collect(second, JobUpdatedDocument, { id: createJob.id }));
  await waitFor('2 more snapshots', async () => (withinProcess.every((s) => s.results.length > 0) ? true : undefined));
  const overProcess = collect(second, JobUpdatedDocument, { id: createJob.id });
  const results = await overProcess.done;
  const errors =
    'error' in results ? (results.error as { extensions?: { code?: string } }[]) : overProcess.results.flatMap((r) => r.errors ?? []);
  expect(errors[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');

  for (const stream of [...held, ...withinProcess]) expect(await stream.done).toEqual({ completed: true });
});

test('a graceful stop sends subscribers the final state of an interrupted job, completes them, and closes with 1001', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '1', SHUTDOWN_GRACE_MS: '200' });
  const { createJob } = await data(server.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  const connection = client(server.url);
  const closed = new Promise<number>((resolve) => connection.on('closed', (event) => resolve((event as { code: number }).code)));
  const stream = collect(connection, JobUpdatedDocument, { id: createJob.id });
  await waitFor('the job to run', async () => (stream.results.some((r) => r.data?.jobUpdated.status === 'RUNNING') ? true : undefined));
  expect(await server.kill('SIGTERM')).toBe(0);
  expect(await stream.done).toEqual({ completed: true });
  expect(stream.results.at(-1)?.data?.jobUpdated).toMatchObject({ status: 'FAILED', error: { code: 'INTERRUPTED' } });
  expect(await closed).toBe(1001);
});
