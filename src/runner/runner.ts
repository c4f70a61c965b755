import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from 'slonik';
import type { Job, JsonValue } from '../jobs/job.ts';
import {
  claimNextJobs,
  completeJob,
  failInterruptedJobsOfWorker,
  failJob,
  INTERRUPTED_MESSAGE,
  updateJobProgress,
} from '../jobs/job-queries.ts';
import { findUnstorableString } from '../jobs/json-check.ts';
import { JobFailure } from '../kinds/kind.ts';
import { findKind } from '../kinds/registry.ts';
import { logger } from '../logger.ts';
import { createProgressWriter } from './progress.ts';
import { openWorkerSession, type WorkerSession } from './worker-session.ts';

export type Runner = {
  /** Stops claiming, gives running jobs `graceMs` to finish, aborts the rest and fails them as INTERRUPTED. */
  stop: (graceMs: number) => Promise<void>;
  /** Jobs this process is running now. */
  runningCount: () => number;
};

type RunningJob = { controller: AbortController; done: Promise<void> };

const SHUTDOWN = new Error('the process is shutting down');
const SESSION_LOST = new Error('the process lost its database session, and with it its claim on the job');

/**
 * Runs queued jobs, up to `concurrency` at once. A job is started as soon as a NOTIFY says one was queued;
 * a slow poll backs the notification up, since NOTIFY is only a hint. Correctness never depends on this
 * process's memory: claims are rows locked with SKIP LOCKED, and liveness is the session's advisory lock.
 */
export async function startRunner(options: {
  pool: DatabasePool;
  databaseUrl: string;
  concurrency: number;
  pollIntervalMs: number;
  /** Registers the runner's wake-up for "a job was queued" notifications (from the process's listener). */
  onJobQueued: (wake: () => void) => void;
}): Promise<Runner> {
  const { pool, concurrency } = options;
  const running = new Map<string, RunningJob>();
  let session: WorkerSession | null = null;
  let stopping = false;
  let filling = false;
  let fillAgain = false;

  const wake = () => {
    void fillSlots();
  };

  async function fillSlots(): Promise<void> {
    // One claim loop at a time; a wake-up during the loop makes it go round once more.
    if (filling) {
      fillAgain = true;
      return;
    }
    filling = true;
    try {
      do {
        fillAgain = false;
        while (!stopping && session && running.size < concurrency) {
          const { workerId } = session;
          const jobs = await claimNextJobs(pool, workerId, concurrency - running.size);
          for (const job of jobs) startJob(job, workerId);
          if (jobs.length === 0) break;
        }
      } while (fillAgain && !stopping);
    } catch (error) {
      logger.error('claiming jobs failed; will retry at the next poll', { err: error });
    } finally {
      filling = false;
    }
  }

  function startJob(job: Job, workerId: number): void {
    const controller = new AbortController();
    const done = runJob(job, workerId, controller.signal).finally(() => {
      running.delete(job.id);
      wake();
    });
    running.set(job.id, { controller, done });
  }

  async function runJob(job: Job, workerId: number, signal: AbortSignal): Promise<void> {
    const claim = { id: job.id, workerId, attempt: job.attempt };
    const progress = createProgressWriter((fraction) => updateJobProgress(pool, claim, fraction));
    logger.info('job started', { jobId: job.id, kind: job.kind, attempt: job.attempt, workerId });
    let outcome: { result: JsonValue } | { error: { code: string; message: string } };
    try {
      const kind = findKind(job.kind);
      if (!kind) throw new JobFailure('UNKNOWN_KIND', `no handler for kind ${job.kind} in this process`);
      const input = kind.input.parse(job.input);
      const result = await kind.handler(input, { jobId: job.id, signal, progress: progress.report });
      outcome = { result: toStorableResult(result) };
    } catch (error) {
      outcome = { error: describeFailure(error, signal) };
    }
    await progress.close();
    // The finish must reach the database, or the job would stay running for as long as this process lives.
    for (let attempt = 1; ; attempt++) {
      try {
        const finished = 'result' in outcome ? await completeJob(pool, claim, outcome.result) : await failJob(pool, claim, outcome.error);
        if (finished) logger.info(`job ${finished.status}`, { jobId: job.id, kind: job.kind, errorCode: finished.errorCode });
        else logger.warn('job finished after losing its claim; its recorded state stands', { jobId: job.id });
        return;
      } catch (error) {
        if (attempt >= 5 || stopping) {
          logger.error('could not record the end of a job', { jobId: job.id, err: error });
          return;
        }
        await sleep(200 * 2 ** attempt);
      }
    }
  }

  // Keep a session (worker id + liveness lock + LISTEN) for as long as the runner runs. When it is lost,
  // this process's claims are void (other processes may already have failed its jobs as interrupted), so
  // abort what it runs, record that where it still can, and come back under a new worker id.
  async function superviseSession(first: WorkerSession): Promise<void> {
    let current: WorkerSession | null = first;
    for (let failures = 0; !stopping; ) {
      if (!current) {
        try {
          current = await openWorkerSession(options.databaseUrl);
          session = current;
          failures = 0;
          wake();
        } catch (error) {
          failures++;
          logger.error('could not open the worker session; retrying', { err: error, failures });
          await sleep(Math.min(30_000, 250 * 2 ** failures));
          continue;
        }
      }
      const error = await current.lost;
      if (stopping) return;
      session = null;
      logger.error("worker session lost; aborting this process's running jobs", { workerId: current.workerId, err: error });
      for (const job of running.values()) job.controller.abort(SESSION_LOST);
      await Promise.allSettled([...running.values()].map((job) => job.done));
      await failInterruptedJobsOfWorker(pool, current.workerId).catch(() => {});
      current = null;
    }
  }

  // The first session is opened before start returns, so a database that is down fails startup loudly.
  session = await openWorkerSession(options.databaseUrl);
  void superviseSession(session);
  options.onJobQueued(wake);
  const poll = setInterval(wake, options.pollIntervalMs);
  wake();

  return {
    runningCount: () => running.size,
    stop: async (graceMs) => {
      stopping = true;
      clearInterval(poll);
      const allDone = () => Promise.allSettled([...running.values()].map((job) => job.done));
      await settledWithin(allDone(), graceMs);
      if (running.size > 0) {
        logger.warn('grace period over; aborting running jobs', { count: running.size });
        for (const job of running.values()) job.controller.abort(SHUTDOWN);
        // Handlers that honour the signal record INTERRUPTED themselves; give them a moment.
        await settledWithin(allDone(), 1000);
      }
      const current = session;
      if (current) {
        // Before the lock is released: fail whatever is still running here, so no job outlives a graceful stop as running.
        const interrupted = await failInterruptedJobsOfWorker(pool, current.workerId);
        if (interrupted.length > 0) logger.warn('jobs interrupted by shutdown', { jobIds: interrupted });
        await current.close();
      }
    },
  };
}

/** Waits for `promise` or `ms`, whichever comes first, without leaving a timer behind. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  const timeout = new AbortController();
  await Promise.race([promise, sleep(ms, undefined, { signal: timeout.signal }).catch(() => {})]);
  timeout.abort();
}

function toStorableResult(result: JsonValue | undefined): JsonValue {
  if (result === undefined) return null;
  let copy: JsonValue;
  try {
    copy = JSON.parse(JSON.stringify(result)) as JsonValue;
  } catch (error) {
    throw new JobFailure('INVALID_RESULT', `the handler returned a result that is not JSON: ${(error as Error).message}`);
  }
  if (findUnstorableString(copy)) {
    throw new JobFailure('INVALID_RESULT', 'the handler returned a string with a NUL character or an unpaired surrogate');
  }
  return copy;
}

function describeFailure(error: unknown, signal: AbortSignal): { code: string; message: string } {
  if (signal.aborted) return { code: 'INTERRUPTED', message: INTERRUPTED_MESSAGE };
  // Only a JobFailure chooses its code: a stray `code` on other errors (ECONNREFUSED, …) is not part of the API.
  const code = error instanceof JobFailure ? error.code : 'JOB_FAILED';
  const message = error instanceof Error ? error.message : String(error);
  return { code, message: message || 'the handler failed without a message' };
}
