import { describe, expect, test } from '@jest/globals';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { demoKinds } from '../src/kinds/demo.ts';
import {
  CancelJobDocument,
  CreateJobDocument,
  type CreateJobInput,
  CreateJobsDocument,
  GetJobDocument,
  type JobFieldsFragment,
  RetryJobDocument,
} from './generated/graphql.ts';
import { startTestApp, useTestApp } from './helpers/app.ts';
import { createTestDatabase, insertJob, insertJobs, useTestDatabase } from './helpers/database.ts';
import { data, execute, postGraphQL } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { waitFor } from './helpers/wait.ts';

// Retries, timeouts, cancellation, idempotency, scheduling, batches and retention, through the public API
// of a real server on a real PostgreSQL.
const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 4, retryBackoffMs: 100, abortGraceMs: 300 } });

async function create(input: CreateJobInput, url = app.url): Promise<JobFieldsFragment> {
  return (await data(url, CreateJobDocument, { input })).createJob;
}

describe('retries', () => {
  test('a handler that throws twice then succeeds, maxAttempts 3, ends COMPLETED on attempt 3 with the last error readable', async () => {
    const job = await create({ kind: 'flaky', input: { failures: 2 }, maxAttempts: 3 });
    const done = await waitForJob(app.url, job.id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({
      status: 'COMPLETED',
      attempt: 3,
      maxAttempts: 3,
      result: { succeededOnAttempt: 3 },
      error: null,
      lastError: { code: 'FLAKY', message: expect.stringContaining('attempt 2') },
    });
    // Between attempts the job was QUEUED again, due after a backoff, with the error readable.
    const waits = await db.query<{ error_code: string; delayed: boolean }>(
      `SELECT error_code, run_at > updated_at AS delayed FROM job_events WHERE job_id = $1 AND status = 'queued' AND attempt > 0 ORDER BY revision`,
      [job.id],
    );
    expect(waits).toEqual([
      { error_code: 'FLAKY', delayed: true },
      { error_code: 'FLAKY', delayed: true },
    ]);
  });

  test('with no attempts left the job is FAILED with the last error', async () => {
    const job = await create({ kind: 'flaky', input: { failures: 5 }, maxAttempts: 2 });
    expect(await waitForJob(app.url, job.id, ['COMPLETED', 'FAILED'])).toMatchObject({
      status: 'FAILED',
      attempt: 2,
      error: { code: 'FLAKY' },
    });
  });

  test('the default is one attempt: a failure is final', async () => {
    const job = await create({ kind: 'flaky', input: { failures: 1 } });
    expect(await waitForJob(app.url, job.id, ['COMPLETED', 'FAILED'])).toMatchObject({ status: 'FAILED', attempt: 1, maxAttempts: 1 });
  });
});

describe('timeouts', () => {
  test('past timeoutMs the handler is aborted and the job FAILED with TIMEOUT', async () => {
    const job = await create({ kind: 'sleep', input: { ms: 20_000 }, timeoutMs: 200 });
    expect(await waitForJob(app.url, job.id, ['FAILED', 'COMPLETED'])).toMatchObject({ status: 'FAILED', error: { code: 'TIMEOUT' } });
  });

  test('a handler that ignores the signal loses its slot anyway, and the job is FAILED with TIMEOUT', async () => {
    const single = await startTestApp(db.url, { runner: { concurrency: 1, abortGraceMs: 200 } });
    try {
      // The stubborn handler sleeps 3 s ignoring its signal; the job must end TIMEOUT long before that, and the
      // slot serve the next job. (Kept short: the abandoned handler's timers run on in this test process.)
      const stubborn = await create({ kind: 'sleep', input: { ms: 3000, ignoreSignal: true }, timeoutMs: 200, priority: 1000 }, single.url);
      expect(await waitForJob(single.url, stubborn.id, ['FAILED', 'COMPLETED'])).toMatchObject({
        status: 'FAILED',
        error: { code: 'TIMEOUT' },
      });
      const next = await create({ kind: 'echo', input: { after: 'timeout' }, priority: 1000 }, single.url);
      expect(await waitForJob(single.url, next.id, ['COMPLETED'])).toMatchObject({ result: { after: 'timeout' } });
    } finally {
      await single.stop();
    }
  });

  test('a timed-out attempt with attempts left is retried', async () => {
    const job = await create({ kind: 'sleep', input: { ms: 20_000 }, timeoutMs: 100, maxAttempts: 2 });
    expect(await waitForJob(app.url, job.id, ['FAILED', 'COMPLETED'])).toMatchObject({
      status: 'FAILED',
      attempt: 2,
      error: { code: 'TIMEOUT' },
    });
  });
});

describe('cancelJob', () => {
  test('a queued job is CANCELLED at once; cancelling it again returns it unchanged', async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const job = await create({ kind: 'echo', runAt: later });
    expect(job.status).toBe('QUEUED');
    const { cancelJob } = await data(app.url, CancelJobDocument, { id: job.id });
    expect(cancelJob).toMatchObject({ status: 'CANCELLED', error: null });
    expect(cancelJob.finishedAt).not.toBeNull();
    const again = await data(app.url, CancelJobDocument, { id: job.id });
    expect(again.cancelJob).toEqual(cancelJob);
  });

  test('a running job gets its signal and ends CANCELLED', async () => {
    const job = await create({ kind: 'sleep', input: { ms: 30_000 } });
    await waitForJob(app.url, job.id, ['RUNNING']);
    const { cancelJob } = await data(app.url, CancelJobDocument, { id: job.id });
    expect(cancelJob.cancelRequestedAt).not.toBeNull();
    expect(await waitForJob(app.url, job.id, ['CANCELLED', 'COMPLETED', 'FAILED'])).toMatchObject({ status: 'CANCELLED', result: null });
  });

  test('a finished job is a CONFLICT; an unknown one NOT_FOUND; a malformed id BAD_USER_INPUT', async () => {
    const done = await create({ kind: 'echo' });
    await waitForJob(app.url, done.id, ['COMPLETED']);
    const failed = await create({ kind: 'fail', input: { message: 'x' } });
    await waitForJob(app.url, failed.id, ['FAILED']);
    for (const [id, code] of [
      [done.id, 'CONFLICT'],
      [failed.id, 'CONFLICT'],
      ['00000000-0000-4000-8000-000000000000', 'NOT_FOUND'],
      ['nope', 'BAD_USER_INPUT'],
    ]) {
      const response = await execute(app.url, CancelJobDocument, { id: id as string });
      expect(response.errors?.[0]?.extensions?.code).toBe(code);
    }
    expect((await data(app.url, GetJobDocument, { id: done.id })).job?.status).toBe('COMPLETED');
  });
});

describe('retryJob', () => {
  test('puts a FAILED or CANCELLED job back in the queue as a new attempt; other states are a CONFLICT', async () => {
    const failed = await create({ kind: 'fail', input: { message: 'first' } });
    await waitForJob(app.url, failed.id, ['FAILED']);
    const { retryJob } = await data(app.url, RetryJobDocument, { id: failed.id });
    expect(retryJob).toMatchObject({ status: 'QUEUED', lastError: { code: 'JOB_FAILED' }, finishedAt: null });
    expect(await waitForJob(app.url, failed.id, ['FAILED'])).toMatchObject({ attempt: 2 });

    const cancelled = await create({ kind: 'echo', input: { again: true }, runAt: new Date(Date.now() + 3_600_000).toISOString() });
    await data(app.url, CancelJobDocument, { id: cancelled.id });
    await data(app.url, RetryJobDocument, { id: cancelled.id });
    expect(await waitForJob(app.url, cancelled.id, ['COMPLETED'])).toMatchObject({ result: { again: true } });

    const response = await execute(app.url, RetryJobDocument, { id: cancelled.id });
    expect(response.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });
});

describe('idempotencyKey', () => {
  test('a second createJob with the same key returns the first job and creates nothing; other input is a CONFLICT', async () => {
    const first = await create({ kind: 'echo', input: { n: 1 }, idempotencyKey: 'order-42' });
    const second = await create({ kind: 'echo', input: { n: 1 }, idempotencyKey: 'order-42' });
    expect(second.id).toBe(first.id);
    const rows = await db.query<{ count: string }>('SELECT count(*) FROM jobs WHERE idempotency_key = $1', ['order-42']);
    expect(rows[0]?.count).toBe('1');
    const other = await execute(app.url, CreateJobDocument, { input: { kind: 'echo', input: { n: 2 }, idempotencyKey: 'order-42' } });
    expect(other.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', jobId: first.id });
  });

  test('a replay matches however the input was written: inline in the query, as a variable, in any key order', async () => {
    const inline = (key: string, input: string) =>
      postGraphQL<{ createJob: { id: string } }>(app.url, {
        query: `mutation { createJob(input: {kind: "echo", input: ${input}, idempotencyKey: "${key}"}) { id } }`,
      });
    const asVariable = (key: string, input: unknown) =>
      postGraphQL<{ createJob: { id: string } }>(app.url, {
        query: 'mutation($input: CreateJobInput!) { createJob(input: $input) { id } }',
        variables: { input: { kind: 'echo', input, idempotencyKey: key } },
      });
    const idOf = (response: { data?: { createJob: { id: string } } | null; errors?: unknown }) => {
      if (!response.data) throw new Error(`GraphQL errors: ${JSON.stringify(response.errors)}`);
      return response.data.createJob.id;
    };
    // Inline twice (the README's own style).
    const first = idOf(await inline('inline-twice', '{hello: "world", list: [1, {a: null}]}'));
    expect(idOf(await inline('inline-twice', '{hello: "world", list: [1, {a: null}]}'))).toBe(first);
    // Mixed: inline first, then as a variable, and the other way round.
    const mixed = idOf(await inline('mixed', '{hello: "world", n: 1.5}'));
    expect(idOf(await asVariable('mixed', { hello: 'world', n: 1.5 }))).toBe(mixed);
    const mixedBack = idOf(await asVariable('mixed-back', { nested: { deep: [true] } }));
    expect(idOf(await inline('mixed-back', '{nested: {deep: [true]}}'))).toBe(mixedBack);
    // Key order does not make another input, at any depth.
    const ordered = idOf(await asVariable('key-order', { a: 1, b: { c: 2, d: 3 } }));
    expect(idOf(await asVariable('key-order', { b: { d: 3, c: 2 }, a: 1 }))).toBe(ordered);
    expect(idOf(await inline('key-order', '{b: {d: 3, c: 2}, a: 1}'))).toBe(ordered);
    // Another value is still a conflict, inline or not.
    for (const other of [await inline('key-order', '{a: 1, b: {c: 2, d: 4}}'), await asVariable('key-order', { a: 1 })]) {
      expect(other.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', jobId: ordered });
    }
    const rows = await db.query<{ count: string }>(
      `SELECT count(*) FROM jobs WHERE idempotency_key IN ('inline-twice', 'mixed', 'mixed-back', 'key-order')`,
    );
    expect(rows[0]?.count).toBe('4');
  });

  test('50 concurrent calls with one key make exactly one row', async () => {
    const created = await Promise.all(
      Array.from({ length: 50 }, () => create({ kind: 'echo', input: { same: true }, idempotencyKey: 'concurrent-in-process' })),
    );
    expect(new Set(created.map((job) => job.id)).size).toBe(1);
    const rows = await db.query<{ count: string }>('SELECT count(*) FROM jobs WHERE idempotency_key = $1', ['concurrent-in-process']);
    expect(rows[0]?.count).toBe('1');
  });
});

describe('scheduling and priority', () => {
  test('higher priority starts first, FIFO within a priority, and a job scheduled for later starts no earlier than its time', async () => {
    // Jobs are queued while no process runs jobs, then one process with one slot takes them.
    const scheduling = await createTestDatabase();
    const api = await startTestApp(scheduling.url, { runner: { concurrency: 0 } });
    try {
      const low = await create({ kind: 'echo', input: { name: 'low' } }, api.url);
      const highFirst = await create({ kind: 'echo', input: { name: 'high-1' }, priority: 5 }, api.url);
      const highSecond = await create({ kind: 'echo', input: { name: 'high-2' }, priority: 5 }, api.url);
      const runAt = new Date(Date.now() + 1500).toISOString();
      const scheduled = await create({ kind: 'echo', input: { name: 'scheduled' }, priority: 100, runAt }, api.url);
      const worker = await startApp(loadConfig({ DATABASE_URL: scheduling.url, WORKER_ONLY: 'true', WORKER_CONCURRENCY: '1' }), {
        kinds: demoKinds,
      });
      try {
        expect(worker.url).toBeNull();
        const done = await Promise.all([low, highFirst, highSecond, scheduled].map((job) => waitForJob(api.url, job.id, ['COMPLETED'])));
        // The order is asserted among the jobs due from the start: on a loaded machine the worker may take longer
        // to start than the scheduled job's delay, and then that job is rightly first (it has the top priority).
        const due = done.slice(0, 3).sort((a, b) => ((a.startedAt as string) < (b.startedAt as string) ? -1 : 1));
        expect(due.map((job) => (job.input as { name: string }).name)).toEqual(['high-1', 'high-2', 'low']);
        const last = done[3] as JobFieldsFragment;
        expect(new Date(last.startedAt as string).getTime()).toBeGreaterThanOrEqual(new Date(runAt).getTime());
      } finally {
        await worker.stop();
      }
    } finally {
      await api.stop();
      await scheduling.drop();
    }
  });
});

describe('createJobs', () => {
  test('creates the jobs in one transaction and returns them in order', async () => {
    const inputs = Array.from({ length: 25 }, (_, i) => ({ kind: 'echo', input: { i } }));
    const { createJobs } = await data(app.url, CreateJobsDocument, { inputs });
    expect(createJobs.map((job) => job.input)).toEqual(inputs.map((input) => input.input));
  });

  test('all or none: a bad item fails the batch with its index, and nothing is written', async () => {
    const before = await db.query<{ count: string }>('SELECT count(*) FROM jobs');
    const inputs = [{ kind: 'echo' }, { kind: 'echo' }, { kind: 'sleep', input: { ms: 'soon' } }, { kind: 'echo' }];
    const response = await execute(app.url, CreateJobsDocument, { inputs });
    expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', index: 2, argument: 'inputs.2.input' });
    // A conflict found only in the database (an idempotency key taken with other input) rolls back the rest too.
    await create({ kind: 'echo', input: { v: 1 }, idempotencyKey: 'batch-key' });
    const conflicting = [
      { kind: 'echo', input: { fresh: true } },
      { kind: 'echo', input: { v: 2 }, idempotencyKey: 'batch-key' },
    ];
    const conflict = await execute(app.url, CreateJobsDocument, { inputs: conflicting });
    expect(conflict.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', index: 1 });
    const after = await db.query<{ count: string }>('SELECT count(*) FROM jobs');
    expect(Number(after[0]?.count)).toBe(Number(before[0]?.count) + 1);
    const tooMany = await execute(app.url, CreateJobsDocument, { inputs: Array.from({ length: 1001 }, () => ({ kind: 'echo' })) });
    expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'inputs' });
  });
});

const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000);

describe('retention', () => {
  test('finished jobs older than JOB_RETENTION are deleted, newer and unfinished ones are kept', async () => {
    const retention = await createTestDatabase();
    try {
      // Factory rows for a state the API cannot reach quickly: jobs that finished two days ago.
      const finished = { status: 'completed', result: {}, worker_id: 1 } as const;
      await insertJobs(retention, 1200, { ...finished, created_at: daysAgo(3), started_at: daysAgo(2), finished_at: daysAgo(2) });
      const recent = await insertJob(retention, { ...finished, started_at: new Date(), finished_at: new Date() });
      const queued = await insertJob(retention, { created_at: daysAgo(3), run_at: daysAgo(-1) });
      const maintained = await startTestApp(retention.url, { runner: { concurrency: 0 }, maintenance: { jobRetentionMs: 86_400_000 } });
      try {
        await waitFor('old jobs to be deleted', async () => {
          const [row] = await retention.query<{ count: string }>('SELECT count(*) FROM jobs');
          return row?.count === '2' ? true : undefined;
        });
        const left = await retention.query<{ id: string }>('SELECT id FROM jobs ORDER BY id');
        expect(left.map((row) => row.id).sort()).toEqual([recent, queued].sort());
      } finally {
        await maintained.stop();
      }
    } finally {
      await retention.drop();
    }
  });
});
