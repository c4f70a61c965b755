import { beforeAll, describe, expect, test } from '@jest/globals';
import { MAX_QUEUE_DEPTH_EVENTS } from '../src/jobs/job-queries.ts';
import {
  CancelJobDocument,
  CreateJobDocument,
  JobHistoryDocument,
  JobStatsDocument,
  type JobStatsQuery,
  JobThroughputDocument,
} from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { insertJobs, useTestDatabase } from './helpers/database.ts';
import { data, execute } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';

// Query.jobStats, Query.jobThroughput and Job.history: what a dashboard reads, for one tenant only.
const ACME = { authorization: 'Bearer acme-key-0123456789abcdef' };
const GLOBEX = { authorization: 'Bearer globex-key-0123456789abcdef' };
const apiKeys = [
  { tenant: 'acme', key: 'acme-key-0123456789abcdef' },
  { tenant: 'globex', key: 'globex-key-0123456789abcdef' },
];
const MINUTE = 60_000;
const ago = (ms: number) => new Date(Date.now() - ms);

type Counts = Record<string, number>;
const byStatus = (stats: JobStatsQuery['jobStats']): Counts => Object.fromEntries(stats.byStatus.map((row) => [row.status, row.count]));
const byKind = (stats: JobStatsQuery['jobStats']): Counts =>
  Object.fromEntries(stats.byKind.map((row) => [`${row.kind}/${row.status}`, row.count]));

describe('counts, throughput and queue depth (no runner: the rows stay as seeded)', () => {
  const db = useTestDatabase();
  const app = useTestApp(db, { runner: { concurrency: 0 }, auth: { apiKeys } });

  beforeAll(async () => {
    // The app's own worker id: a RUNNING row must name a live process, or recovery would end it.
    const [worker] = await db.query<{ id: number }>('SELECT id FROM workers');
    const acme = { tenant: 'acme' };
    await insertJobs(db, 3, { ...acme, created_at: ago(10 * MINUTE), run_at: ago(5 * MINUTE) });
    await insertJobs(db, 2, { ...acme, kind: 'sleep', created_at: ago(20 * MINUTE), run_at: new Date(Date.now() + 3_600_000) });
    await insertJobs(db, 1, { ...acme, kind: 'sleep', status: 'running', worker_id: worker?.id, started_at: new Date(), attempt: 1 });
    await insertJobs(db, 4, { ...acme, status: 'completed', created_at: ago(11 * MINUTE), finished_at: ago(10 * MINUTE) });
    const failed = { error: 'boom', error_code: 'JOB_FAILED', created_at: ago(6 * MINUTE), finished_at: ago(5 * MINUTE) };
    await insertJobs(db, 2, { ...acme, kind: 'fail', status: 'failed', ...failed });
    await insertJobs(db, 1, { ...acme, status: 'cancelled', created_at: ago(121 * MINUTE), finished_at: ago(120 * MINUTE) });
    await insertJobs(db, 5, { ...acme, status: 'completed', created_at: ago(3 * 1440 * MINUTE), finished_at: ago(3 * 1440 * MINUTE) });
    await insertJobs(db, 7, { tenant: 'globex' });
    await insertJobs(db, 6, { tenant: 'globex', status: 'completed', finished_at: ago(MINUTE) });
    // The seeded rows' first events as if recorded when the jobs were created (insertJobs writes them now).
    await db.query('UPDATE job_events e SET recorded_at = j.created_at FROM jobs j WHERE j.id = e.job_id');
  });

  test('jobStats counts unfinished jobs in full and finished ones within the window, per status and per kind', async () => {
    const { jobStats } = await data(app.url, JobStatsDocument, {}, ACME);
    expect(jobStats.finishedWithinMinutes).toBe(60);
    expect(Date.parse(jobStats.at) - Date.parse(jobStats.finishedSince)).toBe(60 * MINUTE);
    expect(jobStats.byStatus.map((row) => row.status)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED']);
    expect(byStatus(jobStats)).toEqual({ QUEUED: 5, RUNNING: 1, COMPLETED: 4, FAILED: 2, CANCELLED: 0 });
    expect(byKind(jobStats)).toEqual({ 'echo/QUEUED': 3, 'sleep/QUEUED': 2, 'sleep/RUNNING': 1, 'echo/COMPLETED': 4, 'fail/FAILED': 2 });
    expect(jobStats.scheduled).toBe(2);
    // The oldest queued job was created 20 minutes ago; the longest-waiting due one fell due 5 minutes ago.
    expect(jobStats.oldestQueuedAgeSeconds).toBeGreaterThanOrEqual(20 * 60);
    expect(jobStats.oldestQueuedAgeSeconds).toBeLessThan(25 * 60);
    expect(jobStats.oldestDueQueuedAgeSeconds).toBeGreaterThanOrEqual(5 * 60);
    expect(jobStats.oldestDueQueuedAgeSeconds).toBeLessThan(10 * 60);

    const day = (await data(app.url, JobStatsDocument, { finishedWithinMinutes: 1440 }, ACME)).jobStats;
    expect(byStatus(day)).toEqual({ QUEUED: 5, RUNNING: 1, COMPLETED: 4, FAILED: 2, CANCELLED: 1 });
  });

  test("a tenant's stats and throughput never include another tenant's jobs", async () => {
    const { jobStats } = await data(app.url, JobStatsDocument, { finishedWithinMinutes: 1440 }, GLOBEX);
    expect(byStatus(jobStats)).toEqual({ QUEUED: 7, RUNNING: 0, COMPLETED: 6, FAILED: 0, CANCELLED: 0 });
    expect(byKind(jobStats)).toEqual({ 'echo/QUEUED': 7, 'echo/COMPLETED': 6 });
    const globex = (await data(app.url, JobThroughputDocument, {}, GLOBEX)).jobThroughput;
    expect(globex.reduce((sum, bucket) => sum + bucket.completed + bucket.failed + bucket.cancelled, 0)).toBe(6);
    expect(globex.at(-1)?.queueDepth).toBe(7);
    const acme = (await data(app.url, JobThroughputDocument, {}, ACME)).jobThroughput;
    expect(acme.reduce((sum, bucket) => sum + bucket.completed, 0)).toBe(4);
    expect(acme.at(-1)?.queueDepth).toBe(5);
  });

  test('jobThroughput has one bucket per minute, oldest first, with each finish in its minute', async () => {
    const { jobThroughput } = await data(app.url, JobThroughputDocument, {}, ACME);
    expect(jobThroughput).toHaveLength(60);
    const starts = jobThroughput.map((bucket) => Date.parse(bucket.start));
    starts.forEach((start, i) => {
      if (i > 0) expect(start - (starts[i - 1] as number)).toBe(MINUTE);
    });
    const finishes = await db.query<{ status: string; finished_at: Date }>(
      "SELECT status, finished_at FROM jobs WHERE tenant = 'acme' AND finished_at > now() - interval '1 hour'",
    );
    for (const status of ['completed', 'failed'] as const) {
      const at = finishes.find((row) => row.status === status)?.finished_at.getTime() as number;
      const bucket = jobThroughput.find((b) => Date.parse(b.start) <= at && at < Date.parse(b.start) + MINUTE);
      expect(bucket?.[status]).toBe(status === 'completed' ? 4 : 2);
    }
    expect(jobThroughput.reduce((sum, b) => sum + b.completed, 0)).toBe(4);
    expect(jobThroughput.reduce((sum, b) => sum + b.failed, 0)).toBe(2);
    expect(jobThroughput.reduce((sum, b) => sum + b.cancelled, 0)).toBe(0);
    const threeHours = (await data(app.url, JobThroughputDocument, { minutes: 180 }, ACME)).jobThroughput;
    expect(threeHours).toHaveLength(180);
    expect(threeHours.reduce((sum, b) => sum + b.cancelled, 0)).toBe(1);
  });

  test('queue depth over time follows the event log, also where pruning removed the revision before a change', async () => {
    // Two more jobs that left the queue: one claimed 5 minutes ago after 35 minutes queued (the runner's own
    // transition, by SQL), one cancelled while queued (through the API); each entered the queue 40 minutes ago.
    const [claimed, cancelled] = await insertJobs(db, 2, { tenant: 'acme', created_at: ago(40 * MINUTE), run_at: ago(40 * MINUTE) });
    const [worker] = await db.query<{ id: number }>('SELECT id FROM workers');
    await db.query("UPDATE jobs SET status = 'running', worker_id = $2, started_at = now(), attempt = 1 WHERE id = $1", [
      claimed,
      worker?.id,
    ]);
    await data(app.url, CancelJobDocument, { id: cancelled as string }, ACME);
    await db.query("UPDATE job_events SET recorded_at = now() - interval '40 minutes' WHERE job_id = ANY($1) AND revision = 1", [
      [claimed, cancelled],
    ]);
    await db.query("UPDATE job_events SET recorded_at = now() - interval '5 minutes' WHERE job_id = $1 AND revision = 2", [claimed]);
    await db.query("UPDATE job_events SET recorded_at = now() - interval '3 minutes' WHERE job_id = $1 AND revision = 2", [cancelled]);
    // The queued count at a moment: the jobs queued then, by the seeded times.
    const queuedAt = (t: number) =>
      (t > Date.now() - 20 * MINUTE ? 2 : 0) +
      (t > Date.now() - 10 * MINUTE ? 3 : 0) +
      (t > Date.now() - 40 * MINUTE && t < Date.now() - 5 * MINUTE ? 1 : 0) +
      (t > Date.now() - 40 * MINUTE && t < Date.now() - 3 * MINUTE ? 1 : 0);
    const expectDepths = (buckets: { start: string; queueDepth?: number | null }[], knownFrom: number) => {
      buckets.slice(0, -1).forEach((bucket) => {
        const end = Date.parse(bucket.start) + MINUTE;
        // Minutes whose end lies within a few seconds of a change are skipped: the test's clock moved on since.
        const nearChange = [40, 20, 10, 5, 3].some((m) => Math.abs(end - (Date.now() - m * MINUTE)) < 10_000);
        if (end < knownFrom) expect(bucket.queueDepth).toBeNull();
        else if (!nearChange)
          expect({ start: bucket.start, depth: bucket.queueDepth }).toEqual({ start: bucket.start, depth: queuedAt(end) });
      });
      expect(buckets.at(-1)?.queueDepth).toBe(5);
    };
    expectDepths((await data(app.url, JobThroughputDocument, {}, ACME)).jobThroughput, 0);

    // Pruning removes the oldest events first: everything recorded before 30 minutes ago goes, the queue
    // entries of both jobs with it. Minutes before the oldest event left are unknown (null), later ones exact.
    await db.query("DELETE FROM job_events WHERE recorded_at < now() - interval '30 minutes'");
    const [oldest] = await db.query<{ at: Date }>('SELECT min(recorded_at) AS at FROM job_events');
    expectDepths((await data(app.url, JobThroughputDocument, {}, ACME)).jobThroughput, oldest?.at.getTime() as number);
  });

  test('arguments out of bounds are BAD_USER_INPUT', async () => {
    for (const minutes of [0, -1, 1441]) {
      const throughput = await execute(app.url, JobThroughputDocument, { minutes }, ACME);
      expect(throughput.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const stats = await execute(app.url, JobStatsDocument, { finishedWithinMinutes: minutes }, ACME);
      expect(stats.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    const [id] = await insertJobs(db, 1, { tenant: 'acme' });
    for (const args of [{ first: 0 }, { first: 101 }, { afterRevision: -1 }]) {
      const history = await execute(app.url, JobHistoryDocument, { id: id as string, ...args }, ACME);
      expect(history.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });
  test("queue depth reads a bounded number of events: past another tenant's busy minute, earlier minutes are null", async () => {
    const [{ queued } = { queued: 0 }] = await db.query<{ queued: number }>(
      "SELECT count(*)::int AS queued FROM jobs WHERE tenant = 'acme' AND status = 'queued'",
    );
    await insertJobs(db, MAX_QUEUE_DEPTH_EVENTS, { tenant: 'globex' });
    const { jobThroughput } = await data(app.url, JobThroughputDocument, {}, ACME);
    expect(jobThroughput.slice(0, -2).every((bucket) => bucket.queueDepth === null)).toBe(true);
    expect(jobThroughput.at(-1)?.queueDepth).toBe(queued);
  });
});

describe('Job.history (a runner on: real revisions)', () => {
  const db = useTestDatabase();
  const app = useTestApp(db, { runner: { concurrency: 2 }, auth: { apiKeys } });

  test('lists the revisions in order, oldest first, and pages through them', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 400 } } }, ACME);
    const final = await waitForJob(app.url, createJob.id, 'COMPLETED', { headers: ACME });
    const all = (await data(app.url, JobHistoryDocument, { id: createJob.id, first: 100 }, ACME)).job?.history;
    expect(all?.startsAtRevision).toBe(1);
    expect(all?.hasNextPage).toBe(false);
    const revisions = all?.events.map((event) => event.revision) ?? [];
    expect(revisions).toEqual(Array.from({ length: final.revision }, (_, i) => i + 1));
    expect(all?.events[0]?.status).toBe('QUEUED');
    expect(all?.events[1]).toMatchObject({ status: 'RUNNING', progress: null, attempt: 1 });
    expect(all?.events.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1, finishedAt: final.finishedAt });
    const times = all?.events.map((event) => Date.parse(event.at)) ?? [];
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    // Pages of 2 after a revision, put together, are the same list.
    const paged: number[] = [];
    for (let after = 0, more = true; more; ) {
      const page = (await data(app.url, JobHistoryDocument, { id: createJob.id, first: 2, afterRevision: after }, ACME)).job?.history;
      if (!page) throw new Error('no history');
      paged.push(...page.events.map((event) => event.revision));
      more = page.hasNextPage;
      after = page.events.at(-1)?.revision ?? after;
      expect(page.events.length).toBeLessThanOrEqual(2);
    }
    expect(paged).toEqual(revisions);
  });

  test('after pruning, the history starts at the oldest revision left, and says so', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { n: 1 } } }, ACME);
    const final = await waitForJob(app.url, createJob.id, 'COMPLETED', { headers: ACME });
    await db.query('DELETE FROM job_events WHERE job_id = $1 AND revision < $2', [createJob.id, final.revision]);
    const history = (await data(app.url, JobHistoryDocument, { id: createJob.id }, ACME)).job?.history;
    expect(history?.startsAtRevision).toBe(final.revision);
    expect(history?.events.map((event) => event.revision)).toEqual([final.revision]);
    await db.query('DELETE FROM job_events WHERE job_id = $1', [createJob.id]);
    const none = (await data(app.url, JobHistoryDocument, { id: createJob.id }, ACME)).job?.history;
    expect(none).toEqual({ startsAtRevision: null, hasNextPage: false, events: [] });
  });

  test('another tenant sees neither the job nor its history', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } }, ACME);
    await waitForJob(app.url, createJob.id, 'COMPLETED', { headers: ACME });
    expect((await data(app.url, JobHistoryDocument, { id: createJob.id }, GLOBEX)).job).toBeNull();
  });
});
