import { beforeAll, describe, expect, test } from '@jest/globals';

import { CreateJobDocument, GetJobDocument, ListJobsDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data, execute } from './helpers/graphql.ts';
import { FINISHED, waitForJob } from './helpers/jobs.ts';

const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 2 } });

describe('createJob', () => {
  test('writes a queued row to the jobs table and returns the job at once', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { hello: 'world' } } });
    expect(createJob).toMatchObject({ kind: 'echo', status: 'QUEUED', input: { hello: 'world' }, result: null, error: null, attempt: 0 });
    const rows = await db.query('SELECT id, kind, input, created_at FROM jobs WHERE id = $1', [createJob.id]);
    expect(rows).toEqual([{ id: createJob.id, kind: 'echo', input: { hello: 'world' }, created_at: expect.any(Date) }]);
  });

  test('an echo job completes with its input as the result, with its timestamps in order', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: [1, 'two', { three: 3 }] } });
    const job = await waitForJob(app.url, createJob.id, FINISHED);
    expect(job).toMatchObject({ status: 'COMPLETED', result: [1, 'two', { three: 3 }], error: null, attempt: 1, progress: 1 });
    const { createdAt, startedAt, finishedAt, updatedAt } = job;
    expect(startedAt && finishedAt).toBeTruthy();
    expect(createdAt <= (startedAt as string)).toBe(true);
    expect((startedAt as string) <= (finishedAt as string)).toBe(true);
    expect((finishedAt as string) <= updatedAt).toBe(true);
  });

  test('a job created without input gets {} as its input', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'echo' } });
    expect(createJob.input).toEqual({});
    expect((await waitForJob(app.url, createJob.id, FINISHED)).result).toEqual({});
  });

  test('a sleep job reports progress while it runs and its result when done', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 600 } } });
    const running = await waitForJob(app.url, createJob.id, 'RUNNING', { where: (job) => (job.progress ?? 0) > 0 });
    expect(running.progress).toBeGreaterThan(0);
    expect(running.progress).toBeLessThan(1);
    expect(running.startedAt).not.toBeNull();
    const done = await waitForJob(app.url, createJob.id, FINISHED);
    expect(done).toMatchObject({ status: 'COMPLETED', result: { sleptMs: 600 }, progress: 1 });
  });

  test('a fail job ends FAILED with code JOB_FAILED and its message, and no result', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'fail', input: { message: 'boom' } } });
    const job = await waitForJob(app.url, createJob.id, FINISHED);
    expect(job).toMatchObject({ status: 'FAILED', error: { code: 'JOB_FAILED', message: 'boom' }, result: null });
    expect(job.finishedAt).not.toBeNull();
  });
});

describe('job(id) and GET /jobs/{id}', () => {
  test('answer the same fields with the same values', async () => {
    const { createJob } = await data(app.url, CreateJobDocument, { input: { kind: 'fail', input: { message: 'for REST' } } });
    const job = await waitForJob(app.url, createJob.id, FINISHED);
    const response = await fetch(`${app.url}/jobs/${createJob.id}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual(job);
  });

  test('an unknown id is null in GraphQL and 404 over REST', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    expect((await data(app.url, GetJobDocument, { id })).job).toBeNull();
    const response = await fetch(`${app.url}/jobs/${id}`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String) } });
  });

  test('a malformed id is BAD_USER_INPUT in GraphQL and 400 over REST', async () => {
    const response = await execute(app.url, GetJobDocument, { id: 'not-a-uuid' });
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const rest = await fetch(`${app.url}/jobs/not-a-uuid`);
    expect(rest.status).toBe(400);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('BAD_USER_INPUT');
    expect((await fetch(`${app.url}/jobs/%E0%A4%A`)).status).toBe(400);
  });
});

describe('jobs list', () => {
  let kind: string;
  const created: string[] = [];

  beforeAll(async () => {
    // Jobs of one kind only this block creates, so the other tests' jobs do not shift the pages.
    kind = 'fail';
    for (let i = 0; i < 7; i++) {
      const { createJob } = await data(app.url, CreateJobDocument, { input: { kind, input: { message: `list ${i}` } } });
      created.push(createJob.id);
    }
    await Promise.all(created.map((id) => waitForJob(app.url, id, FINISHED)));
  });

  test('pages newest first through keyset cursors without skipping or repeating a job', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const {
        jobs,
      }: { jobs: { edges: { node: { id: string; input: unknown } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } =
        await data(app.url, ListJobsDocument, { first: 3, after, kind });
      seen.push(...jobs.edges.map((edge) => edge.node.id));
      if (!jobs.pageInfo.hasNextPage) break;
      after = jobs.pageInfo.endCursor;
    }
    const ownJobs = seen.filter((id) => created.includes(id));
    expect(ownJobs).toEqual([...created].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  test('filters by status and kind', async () => {
    const { jobs } = await data(app.url, ListJobsDocument, { first: 100, status: ['FAILED'], kind: 'fail' });
    expect(jobs.edges.length).toBeGreaterThanOrEqual(created.length);
    for (const { node } of jobs.edges) expect(node).toMatchObject({ status: 'FAILED', kind: 'fail' });
    const none = await data(app.url, ListJobsDocument, { status: ['QUEUED', 'RUNNING'], kind: 'fail' });
    expect(none.jobs.edges).toEqual([]);
    expect(none.jobs.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null });
  });

  test('first defaults to 20 and must be 1 to 100; a cursor must be one of ours', async () => {
    for (let i = 0; i < 15; i++) await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { i } } });
    const { jobs } = await data(app.url, ListJobsDocument, {});
    expect(jobs.edges).toHaveLength(20);
    expect(jobs.pageInfo.hasNextPage).toBe(true);
    for (const first of [0, -1, 101]) {
      const response = await execute(app.url, ListJobsDocument, { first });
      expect(response.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', argument: 'first' } });
    }
    expect((await execute(app.url, ListJobsDocument, { first: 100 })).errors).toBeUndefined();
    for (const after of ['nonsense', Buffer.from('2026-01-01T00:00:00.000000Z|x').toString('base64url'), '']) {
      const response = await execute(app.url, ListJobsDocument, { after });
      expect(response.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', argument: 'after' } });
    }
  });
});
