import { randomUUID } from 'node:crypto';
import { beforeAll, expect, test } from '@jest/globals';
import type { DatabasePool } from 'slonik';
import { createCreateBatcher } from '../../src/jobs/create-batch.ts';
import type { NewJob } from '../../src/jobs/job-queries.ts';
import { setLogLevel } from '../../src/logger.ts';

// What the create batcher does when a batch's statement fails, with a stand-in for the pool that fails on cue:
// the kinds of failure that a real database produces only by chance (a lost connection mid-batch, a timeout).
// test/create-batch.test.ts covers the batches themselves against PostgreSQL.

beforeAll(() => {
  setLogLevel('silent');
});

const newJob = (idempotencyKey: string | null = null): NewJob => ({
  id: randomUUID(),
  tenant: 'acme',
  kind: 'echo',
  input: {},
  maxAttempts: 1,
  priority: 0,
  runAt: null,
  timeoutMs: null,
  idempotencyKey,
});

const failure = (code: string, message = `failed with ${code}`) => Object.assign(new Error(message), { code });

/**
 * A pool whose batch statement (insertJobs: `any`) fails with `batchError`, and whose one-row statements
 * (insertJob: `maybeOne`, the job's id is its first value) answer by `oneRow`. `statements` lists what ran.
 */
function failingPool(batchError: Error, oneRow: (id: string, index: number) => Error | null) {
  const statements: string[] = [];
  const pool = {
    any: async () => {
      statements.push('batch');
      throw batchError;
    },
    maybeOne: async (query: { values: readonly unknown[] }) => {
      const id = String(query.values[0]);
      const error = oneRow(id, statements.filter((statement) => statement !== 'batch').length);
      statements.push(id);
      if (error) throw error;
      return { id };
    },
  };
  return { pool: pool as unknown as DatabasePool, statements };
}

/** The first job goes alone; the others queue behind it and make one batch. */
async function insertAll(pool: DatabasePool, jobs: readonly NewJob[]) {
  const batcher = createCreateBatcher(pool, () => {});
  return Promise.allSettled(jobs.map((job) => batcher.insert(job)));
}

const ids = (jobs: readonly NewJob[]) => jobs.map((job) => job.id);

test('a batch refused for a row is retried one by one, jobs without a key first: only the bad row fails, with its own error', async () => {
  const [alone, keyed, bad, plain] = [newJob(), newJob('k'), newJob(), newJob()] as [NewJob, NewJob, NewJob, NewJob];
  const badRow = failure('22007', 'invalid input syntax for type timestamp with time zone');
  const { pool, statements } = failingPool(failure('22007'), (id) => (id === bad.id ? badRow : null));
  const settled = await insertAll(pool, [alone, keyed, bad, plain]);
  expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  expect((settled[2] as PromiseRejectedResult).reason).toBe(badRow);
  expect(statements).toEqual([alone.id, 'batch', ...ids([bad, plain, keyed])]);
});

test('a batch that the database did not answer fails all its jobs with that error, without one more wait per job', async () => {
  const jobs = [newJob(), newJob(), newJob('k'), newJob()];
  const refused = failure('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432');
  const { pool, statements } = failingPool(refused, () => null);
  const settled = await insertAll(pool, jobs);
  expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
  for (const outcome of settled.slice(1)) expect((outcome as PromiseRejectedResult).reason).toBe(refused);
  expect(statements).toEqual([jobs[0]?.id, 'batch']);
});

test('a batch cancelled at statement_timeout is retried one by one; the first retry the database does not answer fails the rest unwritten', async () => {
  const jobs = [newJob(), newJob(), newJob(), newJob(), newJob()];
  const lost = failure('ECONNRESET', 'read ECONNRESET');
  // The first retried job is inserted, the second meets a lost connection.
  const { pool, statements } = failingPool(failure('57014', 'canceling statement due to statement timeout'), (_id, index) =>
    index === 2 ? lost : null,
  );
  const settled = await insertAll(pool, jobs);
  expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
  for (const outcome of settled.slice(2)) expect((outcome as PromiseRejectedResult).reason).toBe(lost);
  expect(statements).toEqual([jobs[0]?.id, 'batch', jobs[1]?.id, jobs[2]?.id]);
});
