import { describe, expect, test } from '@jest/globals';

import {
  AwaitJobDocument,
  CreateJobDocument,
  GetJobDocument,
  JobsUpdatedDocument,
  type JobsUpdatedSubscription,
  JobUpdatedDocument,
  type JobUpdatedSubscription,
} from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data, execute } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { collect, readSseUntilComplete, sseSubscribe, wsClient } from './helpers/live-clients.ts';
import { waitFor } from './helpers/wait.ts';

const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 4 } });

async function createJob(kind: string, input: unknown) {
  return (await data(app.url, CreateJobDocument, { input: { kind, input } })).createJob;
}

function revisionsOf(results: { data?: JobUpdatedSubscription | null }[]): number[] {
  return results.map((result) => result.data?.jobUpdated.revision ?? -1);
}

function expectConsecutive(revisions: number[]): void {
  for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBe((revisions[i - 1] as number) + 1);
}

describe('jobUpdated over graphql-ws', () => {
  test('sends the snapshot, then every change in revision order with no gap, and completes after the final state', async () => {
    const client = wsClient(app.url);
    try {
      const job = await createJob('sleep', { ms: 800 });
      const stream = collect(client, JobUpdatedDocument, { id: job.id });
      expect(await stream.done).toEqual({ completed: true });
      const revisions = revisionsOf(stream.results);
      expect(revisions[0]).toBeGreaterThanOrEqual(1);
      expectConsecutive(revisions);
      const last = stream.results.at(-1)?.data?.jobUpdated;
      const { job: final } = await data(app.url, GetJobDocument, { id: job.id });
      expect(last).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 800 }, revision: final?.revision, progress: 1 });
      // Progress reached the subscriber as it went, not only at the end.
      const progress = stream.results.map((r) => r.data?.jobUpdated.progress).filter((p): p is number => typeof p === 'number' && p < 1);
      expect(progress.length).toBeGreaterThan(2);
      expect(stream.results.every((r) => r.errors === undefined)).toBe(true);
    } finally {
      await client.dispose();
    }
  });

  test('misses nothing between the snapshot and the stream when the job changes fast', async () => {
    const client = wsClient(app.url);
    try {
      // Subscribe many times while a job is mid-run; each stream must be gap-free from its snapshot on.
      const job = await createJob('sleep', { ms: 600 });
      const streams = [];
      for (let i = 0; i < 10; i++) {
        streams.push(collect(client, JobUpdatedDocument, { id: job.id }));
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      const final = await waitForJob(app.url, job.id, 'COMPLETED');
      for (const stream of streams) {
        expect(await stream.done).toEqual({ completed: true });
        const revisions = revisionsOf(stream.results);
        expectConsecutive(revisions);
        expect(revisions.at(-1)).toBe(final?.revision);
      }
    } finally {
      await client.dispose();
    }
  });

  test('a job that finished long ago gives one event and completes', async () => {
    const client = wsClient(app.url);
    try {
      const job = await createJob('echo', { done: true });
      await waitForJob(app.url, job.id, 'COMPLETED');
      const stream = collect(client, JobUpdatedDocument, { id: job.id });
      expect(await stream.done).toEqual({ completed: true });
      expect(stream.results).toHaveLength(1);
      expect(stream.results[0]?.data?.jobUpdated).toMatchObject({ status: 'COMPLETED', result: { done: true } });
    } finally {
      await client.dispose();
    }
  });

  test('an unknown id is NOT_FOUND and a malformed one BAD_USER_INPUT', async () => {
    const client = wsClient(app.url);
    try {
      for (const [id, code] of [
        ['00000000-0000-4000-8000-000000000000', 'NOT_FOUND'],
        ['nope', 'BAD_USER_INPUT'],
      ] as const) {
        const stream = collect(client, JobUpdatedDocument, { id });
        const end = await stream.done;
        const errors = 'error' in end ? (end.error as { extensions?: { code?: string } }[]) : stream.results.flatMap((r) => r.errors ?? []);
        expect(errors[0]?.extensions?.code).toBe(code);
      }
    } finally {
      await client.dispose();
    }
  });

  test('afterRevision resumes after what the client has: the missed changes in order, nothing twice', async () => {
    const client = wsClient(app.url);
    try {
      const job = await createJob('sleep', { ms: 600 });
      const first = collect(client, JobUpdatedDocument, { id: job.id });
      await waitFor('a few events', async () => (first.results.length >= 3 ? true : undefined));
      first.unsubscribe();
      const have = revisionsOf(first.results).at(-1) as number;
      // While disconnected the job moves on; then the client resumes.
      await waitForJob(app.url, job.id, 'COMPLETED');
      const resumed = collect(client, JobUpdatedDocument, { id: job.id, afterRevision: have });
      expect(await resumed.done).toEqual({ completed: true });
      const revisions = revisionsOf(resumed.results);
      expect(revisions[0]).toBe(have + 1);
      expectConsecutive(revisions);
      expect(resumed.results.at(-1)?.data?.jobUpdated.status).toBe('COMPLETED');
      // Resuming at the final revision: nothing new, the stream just completes.
      const nothing = collect(client, JobUpdatedDocument, { id: job.id, afterRevision: revisions.at(-1) as number });
      expect(await nothing.done).toEqual({ completed: true });
      expect(nothing.results).toEqual([]);
    } finally {
      await client.dispose();
    }
  });
});

describe('jobUpdated over Server-Sent Events', () => {
  test('carries the same events, each with its revision as the event id, and resumes from Last-Event-ID', async () => {
    const job = await createJob('sleep', { ms: 500 });
    const { status, events } = await sseSubscribe(app.url, JobUpdatedDocument, { id: job.id });
    expect(status).toBe(200);
    const received = await readSseUntilComplete<JobUpdatedSubscription>(events);
    const revisions = received.map((event) => event.result.data?.jobUpdated.revision as number);
    expectConsecutive(revisions);
    expect(received.map((event) => event.id)).toEqual(revisions.map(String));
    expect(received.at(-1)?.result.data?.jobUpdated).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 500 } });

    const resumeFrom = revisions[Math.floor(revisions.length / 2)] as number;
    const resumed = await sseSubscribe(app.url, JobUpdatedDocument, { id: job.id }, { lastEventId: String(resumeFrom) });
    const rest = await readSseUntilComplete<JobUpdatedSubscription>(resumed.events);
    expect(rest.map((event) => Number(event.id))).toEqual(revisions.filter((r) => r > resumeFrom));
  });
});

describe('jobsUpdated', () => {
  test('sends every change of the jobs matching the filter, and only those', async () => {
    const client = wsClient(app.url);
    try {
      const seen: NonNullable<JobsUpdatedSubscription['jobsUpdated']>[] = [];
      const stream = collect(client, JobsUpdatedDocument, { kind: 'fail', status: ['FAILED'] }, (result) => {
        if (result.data) seen.push(result.data.jobsUpdated);
      });
      // Give the subscription a moment to be registered on the server before the jobs are created.
      await waitFor('the subscription to be active', async () => {
        const probe = await createJob('fail', { message: 'probe' });
        await waitFor('probe', async () => (seen.some((job) => job.id === probe.id) ? true : undefined), 3000).catch(() => undefined);
        return seen.some((job) => job.id === probe.id) ? true : undefined;
      });
      const failing = await Promise.all([1, 2, 3].map((i) => createJob('fail', { message: `dash ${i}` })));
      const other = await createJob('echo', { not: 'matching' });
      await waitFor('the three failures', async () => (failing.every((job) => seen.some((s) => s.id === job.id)) ? true : undefined));
      stream.unsubscribe();
      for (const job of seen) expect(job).toMatchObject({ kind: 'fail', status: 'FAILED', error: { code: 'JOB_FAILED' } });
      expect(seen.some((job) => job.id === other.id)).toBe(false);
    } finally {
      await client.dispose();
    }
  });
});

describe('awaitJob', () => {
  test('returns the job as soon as it is final', async () => {
    const job = await createJob('sleep', { ms: 300 });
    const { awaitJob } = await data(app.url, AwaitJobDocument, { id: job.id, timeoutMs: 30_000 });
    expect(awaitJob).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 300 } });
  });

  test('returns the job as it is when the timeout runs out', async () => {
    const job = await createJob('sleep', { ms: 20_000 });
    await waitForJob(app.url, job.id, 'RUNNING');
    const { awaitJob } = await data(app.url, AwaitJobDocument, { id: job.id, timeoutMs: 300 });
    expect(awaitJob?.status).toBe('RUNNING');
  });

  test('is null for an unknown id and rejects a timeout over 60 s', async () => {
    expect((await data(app.url, AwaitJobDocument, { id: '00000000-0000-4000-8000-000000000000', timeoutMs: 100 })).awaitJob).toBeNull();
    const response = await execute(app.url, AwaitJobDocument, { id: '00000000-0000-4000-8000-000000000000', timeoutMs: 60_001 });
    expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'timeoutMs' });
  });
});

describe('when the listener connection is terminated', () => {
  test('the process reconnects and the subscriber still gets the final state', async () => {
    const client = wsClient(app.url);
    try {
      const job = await createJob('sleep', { ms: 1500 });
      const stream = collect(client, JobUpdatedDocument, { id: job.id });
      await waitFor('the first event', async () => (stream.results.length > 0 ? true : undefined));
      const terminated = await db.query<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
         WHERE application_name LIKE 'jobql:%:listener' AND datname = current_database()`,
      );
      expect(terminated).toEqual([{ ok: true }]);
      expect(await stream.done).toEqual({ completed: true });
      const revisions = revisionsOf(stream.results);
      expectConsecutive(revisions);
      expect(stream.results.at(-1)?.data?.jobUpdated).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 1500 } });
      // And the listener is back: a new job is picked up and streamed without waiting for a poll.
      const after = await createJob('echo', { again: true });
      const next = collect(client, JobUpdatedDocument, { id: after.id });
      expect(await next.done).toEqual({ completed: true });
      expect(next.results.at(-1)?.data?.jobUpdated.status).toBe('COMPLETED');
    } finally {
      await client.dispose();
    }
  });
});
