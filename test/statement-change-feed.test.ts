import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { completeJobs, insertJobs as insertJobsBatch } from '../src/jobs/job-queries.ts';
import { setLogLevel } from '../src/logger.ts';
import { JOBS_CHANGED_CHANNEL, type JobChange, LEGACY_JOB_CHANGED_CHANNEL } from '../src/notify/change-payload.ts';
import { type Listener, startListener } from '../src/notify/listener.ts';
import { CreateJobDocument, JobsUpdatedDocument, type JobsUpdatedSubscription, JobUpdatedDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { insertJobs, useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { waitFor } from './helpers/wait.ts';

// The change feed of migration 009: statement-level triggers write one statement's events in one INSERT and
// announce its changes in as few NOTIFYs on jobql_jobs_changed as fit under the payload limit, while every job
// still gets its own gap-free revision, event row and notification entry.

type Event = { job_id: string; revision: number; status: string };

/** A LISTEN connection of its own, recording the raw notifications of a channel. */
async function rawListener(url: string, channel: string) {
  const client = new pg.Client({ connectionString: url });
  const payloads: string[] = [];
  client.on('notification', (message) => {
    if (message.channel === channel && message.payload !== undefined) payloads.push(message.payload);
  });
  await client.connect();
  await client.query(`LISTEN ${channel}`);
  return { payloads, close: () => client.end() };
}

/** Every job's revisions in job_events, in order. */
async function revisionsById(
  db: { query: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]> },
  ids: string[],
) {
  const events = await db.query<Event>('SELECT job_id, revision, status FROM job_events WHERE job_id = ANY($1) ORDER BY job_id, revision', [
    ids,
  ]);
  const byId = new Map<string, number[]>();
  for (const event of events) byId.set(event.job_id, [...(byId.get(event.job_id) ?? []), event.revision]);
  return byId;
}

describe('the triggers', () => {
  const db = useTestDatabase();
  let pool: DatabasePool;
  let listener: Listener;
  const heard: JobChange[] = [];
  beforeAll(async () => {
    setLogLevel('silent');
    pool = await createDatabasePool(db.url, 2);
    listener = await startListener(db.url);
    listener.onChange((change) => heard.push(change));
  });
  afterAll(async () => {
    await listener.close();
    await pool.end();
  });

  test('a multi-row UPDATE records exactly one event per changed job, gap-free, and the listener hears every job', async () => {
    const ids = await insertJobs(db, 25, { status: 'running', attempt: 1, worker_id: 3, started_at: new Date() });
    const completed = await completeJobs(
      pool,
      ids.map((id, i) => ({ claim: { id, workerId: 3, attempt: 1 }, result: { i } })),
    );
    expect(completed).toHaveLength(25);
    const revisions = await revisionsById(db, ids);
    for (const id of ids) expect(revisions.get(id)).toEqual([1, 2]);
    const [{ n } = { n: -1 }] = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM job_events WHERE job_id = ANY($1) AND status = 'completed'",
      [ids],
    );
    expect(n).toBe(25);
    await waitFor('the listener to hear all 25 completions', async () =>
      ids.every((id) => heard.some((change) => change.id === id && change.revision === 2 && change.status === 'completed'))
        ? true
        : undefined,
    );
    for (const id of ids) {
      // The insert (inserted as running: revision 1) and the completion, each heard once.
      expect(heard.filter((change) => change.id === id)).toEqual([
        { id, revision: 1, status: 'running', kind: 'echo', tenant: 'default', cancel: false },
        { id, revision: 2, status: 'completed', kind: 'echo', tenant: 'default', cancel: false },
      ]);
    }
  });

  test('an update that changes nothing visible records and announces nothing; several statements in one transaction each get their revision', async () => {
    const ids = await insertJobs(db, 3);
    const raw = await rawListener(db.url, JOBS_CHANGED_CHANNEL);
    try {
      await db.query('UPDATE jobs SET worker_id = 9 WHERE id = ANY($1)', [ids]);
      await db.query(
        `BEGIN; UPDATE jobs SET progress = 0.5 WHERE id = ANY('{${ids.join(',')}}'::uuid[]);
         UPDATE jobs SET cancel_requested_at = now() WHERE id = ANY('{${ids.join(',')}}'::uuid[]); COMMIT;`,
      );
      await waitFor('two notifications', async () => (raw.payloads.length >= 2 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(raw.payloads).toHaveLength(2);
      const [progress, cancel] = raw.payloads.map((payload) => JSON.parse(payload) as unknown[][]);
      expect(progress?.map((entry) => entry[1])).toEqual([2, 2, 2]);
      expect(cancel?.map((entry) => [entry[1], entry[5]])).toEqual([
        [3, 1],
        [3, 1],
        [3, 1],
      ]);
      const revisions = await revisionsById(db, ids);
      for (const id of ids) expect(revisions.get(id)).toEqual([1, 2, 3]);
    } finally {
      await raw.close();
    }
  });

  test('a statement changing 500 jobs is split into several payloads under 7,000 bytes, with every job in exactly one', async () => {
    const ids = await insertJobs(db, 500);
    // Worst-case entries too: kind and tenant at their 100-character limit, each character escaped by JSON.
    const escaped = await insertJobs(db, 100, { kind: '\u0001'.repeat(100), tenant: '"'.repeat(100) });
    const all = [...ids, ...escaped];
    const raw = await rawListener(db.url, JOBS_CHANGED_CHANNEL);
    try {
      await db.query("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = ANY($1)", [all]);
      const entries = () => raw.payloads.flatMap((payload) => JSON.parse(payload) as unknown[][]);
      await waitFor('every entry', async () => (entries().length >= all.length ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(raw.payloads.length).toBeGreaterThan(1);
      for (const payload of raw.payloads) expect(Buffer.byteLength(payload)).toBeLessThan(7000);
      const seen = entries();
      expect(seen).toHaveLength(all.length);
      expect(new Set(seen.map((entry) => entry[0]))).toEqual(new Set(all));
      for (const entry of seen) expect(entry.slice(1, 3)).toEqual([2, 'cancelled']);
      expect(seen.find((entry) => entry[0] === escaped[0])?.slice(3)).toEqual(['\u0001'.repeat(100), '"'.repeat(100), 0]);
      await waitFor('the listener to hear all 600', async () =>
        all.every((id) => heard.some((change) => change.id === id && change.revision === 2)) ? true : undefined,
      );
      const revisions = await revisionsById(db, all);
      for (const id of all) expect(revisions.get(id)).toEqual([1, 2]);
    } finally {
      await raw.close();
    }
  });

  test('jobql_create_job and a multi-row INSERT record each job at revision 1', async () => {
    const [{ id } = { id: '' }] = await db.query<{ id: string }>(`SELECT jobql_create_job('echo', '{}', '{"tenant":"sql"}') AS id`);
    const ids = await insertJobs(db, 40);
    const revisions = await revisionsById(db, [id, ...ids]);
    for (const job of [id, ...ids]) expect(revisions.get(job)).toEqual([1]);
    await waitFor('the listener to hear them', async () =>
      [id, ...ids].every((job) => heard.some((change) => change.id === job && change.revision === 1)) ? true : undefined,
    );
    expect(heard.find((change) => change.id === id)).toEqual({
      id,
      revision: 1,
      status: 'queued',
      kind: 'echo',
      tenant: 'sql',
      cancel: false,
    });
  });

  test("a batch of creates (the create batcher's insertJobs) is one event per job and one notification for the batch", async () => {
    const raw = await rawListener(db.url, JOBS_CHANGED_CHANNEL);
    try {
      const batch = Array.from({ length: 30 }, (_, i) => ({
        id: randomUUID(),
        tenant: i % 2 === 0 ? 'default' : 'other',
        kind: 'echo',
        input: { i },
        maxAttempts: 1,
        priority: 0,
        runAt: null,
        timeoutMs: null,
        idempotencyKey: null,
      }));
      expect(await insertJobsBatch(pool, batch)).toHaveLength(30);
      await waitFor('the notification', async () => (raw.payloads.length >= 1 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(raw.payloads).toHaveLength(1);
      const entries = JSON.parse(raw.payloads[0] as string) as unknown[][];
      expect(entries.map((entry) => entry[0]).sort()).toEqual(batch.map((job) => job.id).sort());
      for (const entry of entries) expect(entry.slice(1)).toEqual([1, 'queued', 'echo', entry[4], 0]);
      expect(new Set(entries.map((entry) => entry[4]))).toEqual(new Set(['default', 'other']));
      const revisions = await revisionsById(
        db,
        batch.map((job) => job.id),
      );
      for (const job of batch) expect(revisions.get(job.id)).toEqual([1]);
    } finally {
      await raw.close();
    }
  });

  test('the per-row channel of older versions is still heard (a rolling deploy before migration 009 is applied everywhere)', async () => {
    const id = '00000000-0000-4000-8000-000000000009';
    const legacy = { id, revision: 7, status: 'running', kind: 'echo', tenant: 'default', cancel: true };
    await db.query('SELECT pg_notify($1, $2)', [LEGACY_JOB_CHANGED_CHANNEL, JSON.stringify(legacy)]);
    await waitFor('the legacy notification', async () => (heard.some((change) => change.id === id) ? true : undefined));
    expect(heard.find((change) => change.id === id)).toEqual(legacy);
  });
});

describe('subscribers and the runner', () => {
  const db = useTestDatabase();
  // The re-check backstop and the runner's poll are far apart, so what arrives in time came from the NOTIFY.
  const app = useTestApp(db, { runner: { concurrency: 4, pollIntervalMs: 600_000 }, live: { recheckMs: 600_000 } });

  test('a job inserted by plain SQL wakes the runner (no poll would run it within the test)', async () => {
    // One claim at startup may have found nothing; the insert's notification is what starts this job.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [id] = await insertJobs(db, 1, { input: { ping: 1 } });
    await waitForJob(app.url, id as string, 'COMPLETED', { timeoutMs: 10_000 });
  });

  test('one UPDATE of many jobs reaches jobsUpdated with every job, and each jobUpdated subscriber with its job', async () => {
    const client = wsClient(app.url);
    try {
      const seen: NonNullable<JobsUpdatedSubscription['jobsUpdated']>[] = [];
      const feed = collect(client, JobsUpdatedDocument, { kind: 'sleep', status: ['CANCELLED'] }, (result) => {
        if (result.data) seen.push(result.data.jobsUpdated);
      });
      // Jobs of a kind nobody runs here stay queued (sleep is run, so a far runAt keeps them waiting).
      const runAt = new Date(Date.now() + 3_600_000).toISOString();
      const jobs = await Promise.all(
        Array.from({ length: 5 }, () => data(app.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 1 }, runAt } })),
      );
      const watched = jobs.map(({ createJob }) => collect(client, JobUpdatedDocument, { id: createJob.id }));
      await waitFor('the snapshots', async () => (watched.every((stream) => stream.results.length >= 1) ? true : undefined));
      // Give the feed subscription a moment to register; its probe is a job cancelled on its own.
      await waitFor('the feed to be active', async () => {
        const [probe] = await insertJobs(db, 1, { kind: 'sleep', status: 'cancelled', finished_at: new Date() });
        await db.query('UPDATE jobs SET progress = 0 WHERE id = $1', [probe]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        return seen.some((job) => job.id === probe) ? true : undefined;
      });
      const more = await insertJobs(db, 200, { kind: 'sleep', run_at: new Date(Date.now() + 3_600_000) });
      const ids = [...jobs.map(({ createJob }) => createJob.id), ...more];
      await db.query("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = ANY($1)", [ids]);
      await waitFor('the feed to have every job', async () => (ids.every((id) => seen.some((job) => job.id === id)) ? true : undefined));
      for (const stream of watched) {
        expect(await stream.done).toEqual({ completed: true });
        expect(stream.results.at(-1)?.data?.jobUpdated).toMatchObject({ status: 'CANCELLED', revision: 2 });
      }
      feed.unsubscribe();
    } finally {
      await client.dispose();
    }
  });
});
