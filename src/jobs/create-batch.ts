import type { DatabasePool } from 'slonik';
import { isDatabaseUnavailable, isStatementTimeout } from '../db/unavailable.ts';
import { logger } from '../logger.ts';
import type { Job } from './job.ts';
import { insertJob, insertJobs, type NewJob } from './job-queries.ts';

/** At most this many jobs in one insert: bounds the statement's size and the commit's NOTIFY payloads. */
export const MAX_CREATE_BATCH = 100;

export type CreateBatcher = {
  /**
   * Inserts one checked job, as insertJob does: the job as inserted, or null when its idempotency key is taken
   * (the caller reads the holder). Rejects with the error the one-row insert gives for this job.
   */
  insert: (job: NewJob) => Promise<Job | null>;
  /** Waits until every queued insert is written (or has failed); later inserts are refused. Before the pool ends. */
  close: () => Promise<void>;
};

type Pending = { job: NewJob; resolve: (job: Job | null) => void; reject: (error: unknown) => void };

type Write = (jobs: number) => void;

/**
 * The one-row statement of before (insertJob), for a job alone and for each retry. Settles the job's caller;
 * returns the error when it says the database did not answer (or timed the statement out), else null.
 */
async function insertOne(pool: DatabasePool, onWrite: Write, pending: Pending): Promise<{ unanswered: unknown } | null> {
  try {
    const job = await insertJob(pool, pending.job);
    onWrite(1);
    pending.resolve(job);
    return null;
  } catch (error) {
    pending.reject(error);
    return isDatabaseUnavailable(error) ? { unanswered: error } : null;
  }
}

/**
 * After a failed batch, each job with the one-row statement, so that a bad row fails only its caller. The first
 * error that says the database is not answering (or timed the statement out) fails the jobs not yet tried with
 * it, unwritten: one at a time, each would wait as long again.
 */
async function insertOneByOne(pool: DatabasePool, onWrite: Write, batch: readonly Pending[]): Promise<void> {
  for (const [index, pending] of batch.entries()) {
    const failed = await insertOne(pool, onWrite, pending);
    if (!failed) continue;
    for (const rest of batch.slice(index + 1)) rest.reject(failed.unanswered);
    return;
  }
}

/**
 * Group commit for createJob, the same pattern as the runner's completions (runner/completion-batch.ts): each
 * insert commits and its trigger sends a NOTIFY, and notifying commits run one at a time on PostgreSQL's
 * notify-queue lock, each waiting for its own WAL flush (README, "Where the time goes"). Here a job is inserted
 * at once when no insert is in flight, alone, with the one-row statement of before (insertJob): no added latency
 * when idle. While one is in flight, the next ones queue, and when it returns they are all inserted in one
 * statement and one commit (insertJobs), up to MAX_CREATE_BATCH. Nothing waits on a timer: a batch is exactly
 * what arrived during the previous round trip. One statement is all or nothing: when a batch's statement fails
 * (a row PostgreSQL refuses, a deadlock), nothing of it was written, and its jobs are inserted again one by one
 * with the one-row statement, so a bad row fails only its own caller, with the error it would have got alone;
 * when the database does not answer, every job of the batch fails with that error at once. A job with an
 * idempotency key is never batched: its insert may wait on another transaction that holds the same key
 * uncommitted (an application's open transaction that called jobql_create_job), and a batch would make every
 * tenant's creates wait with it. One batcher per process, shared by every tenant (the tenant is a column of each
 * row); correctness across processes is PostgreSQL's, as for the one-row insert.
 */
export function createCreateBatcher(pool: DatabasePool, onWrite: (jobs: number) => void): CreateBatcher {
  const queue: Pending[] = [];
  let writing: Promise<void> | null = null;
  const keyed = new Set<Promise<unknown>>();
  let closed = false;

  async function writeBatch(batch: readonly Pending[]): Promise<void> {
    const [only] = batch;
    if (batch.length === 1 && only) {
      await insertOne(pool, onWrite, only);
      return;
    }
    try {
      const written = await insertJobs(
        pool,
        batch.map((pending) => pending.job),
      );
      onWrite(batch.length);
      const byId = new Map(written.map((job) => [job.id, job]));
      for (const pending of batch) pending.resolve(byId.get(pending.job.id) ?? null);
    } catch (error) {
      // The database does not answer (refused, lost, or silent past the client's timeout): every job of the batch
      // gets that error, as each would have alone, without one more wait per job. A statement timeout is the
      // server's answer, and may be one row's own lock wait: that batch is retried like any refused row.
      if (isDatabaseUnavailable(error) && !isStatementTimeout(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // Nothing of the batch was written: one by one, each caller gets its own row or its own error.
      logger.warn('a batched insert of jobs failed; inserting them one by one', { jobs: batch.length, err: error });
      await insertOneByOne(pool, onWrite, batch);
    }
  }

  async function writeQueued(): Promise<void> {
    try {
      while (queue.length > 0) await writeBatch(queue.splice(0, MAX_CREATE_BATCH));
    } finally {
      writing = null;
    }
  }

  return {
    insert: (job) =>
      new Promise<Job | null>((resolve, reject) => {
        if (closed) {
          reject(new Error('jobql is stopping: the job was not created'));
          return;
        }
        const pending = { job, resolve, reject };
        if (job.idempotencyKey !== null) {
          // Alone, beside the batches: only its own caller waits if another transaction holds its key.
          const insert = insertOne(pool, onWrite, pending).finally(() => keyed.delete(insert));
          keyed.add(insert);
          return;
        }
        queue.push(pending);
        writing ??= writeQueued();
      }),
    close: async () => {
      closed = true;
      await Promise.all([writing, ...keyed]);
    },
  };
}
