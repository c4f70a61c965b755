import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from 'slonik';
import type { Job } from '../jobs/job.ts';
import {
  type Interruption,
  interruptions,
  interruptJobsOfWorker,
  listCancelRequestedJobsOfWorker,
  updateJobProgress,
} from '../jobs/job-queries.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { JobChange } from '../notify/change-payload.ts';
import { recordOutcome } from './completer.ts';
import { type CompletionBatcher, createCompletionBatcher } from './completion-batch.ts';
import { CANCELLED, executeAttempt } from './executor.ts';
import { createProducer } from './producer.ts';
import { createProgressWriter } from './progress.ts';
import type { WorkerPresence, WorkerSession } from './worker-session.ts';

export type Runner = {
  /** Stops claiming, gives running jobs `graceMs` to finish, aborts the rest and ends them as INTERRUPTED. */
  stop: (graceMs: number) => Promise<void>;
  /** Jobs this process is running now. */
  runningCount: () => number;
  /** Null while the runner has its session and its last claim worked; otherwise why it cannot run jobs (for /readyz). */
  notReadyReason: () => string | null;
};

type RunningJob = { kind: string; controller: AbortController; done: Promise<void> };

// Distinct reasons with the same stored code (INTERRUPTED, as the README promises): the message says which.
const SHUTDOWN = interruptions.shutdown;
const SESSION_LOST = interruptions.sessionLost;

export type RunnerOptions = {
  pool: DatabasePool;
  /** The kinds this process has handlers for: the only ones it claims. */
  kinds: KindRegistry;
  /** This process's worker session: the worker id claims are made under, and whether it may claim now. */
  presence: WorkerPresence;
  concurrency: number;
  pollIntervalMs: number;
  /** Base of the exponential backoff between attempts. */
  retryBackoffMs: number;
  /** How long a handler whose signal fired (timeout, cancel) may take to stop before its slot is taken back. */
  abortGraceMs: number;
  /** Registers the runner for the process's job change notifications: wake-ups and cancel requests. */
  onJobChanged: (handler: (change: JobChange) => void) => void;
  /** Registers the runner for "the database is back" (the listener reconnected): claim now. */
  onDatabaseBack?: (handler: () => void) => void;
  metrics: Metrics;
};

/**
 * Runs queued jobs of the kinds it has handlers for, up to `concurrency` at once and up to each kind's own
 * `concurrency` of that kind (a finished job wakes the producer when the last claim may have left jobs behind, so a kind at its limit is claimed for again). A job is started as soon as a NOTIFY says one was queued;
 * a slow poll backs the notification up, since NOTIFY is only a hint. Correctness never depends on this
 * process's memory: claims are rows locked with SKIP LOCKED, and liveness is the worker session's advisory
 * lock and heartbeat (see worker-session.ts).
 */
export async function startRunner(options: RunnerOptions): Promise<Runner> {
  const { pool, concurrency, presence } = options;
  const running = new Map<string, RunningJob>();
  let stopping = false;
  const completions = createCompletionBatcher(pool, options.metrics.completionWritten);
  const producer = createProducer({
    pool,
    presence,
    kinds: options.kinds.all(),
    concurrency,
    pollIntervalMs: options.pollIntervalMs,
    runningCount: () => running.size,
    runningOf: (kind) => {
      let count = 0;
      for (const job of running.values()) if (job.kind === kind) count++;
      return count;
    },
    onClaim: options.metrics.claimRan,
    stopping: () => stopping,
    startJob,
  });
  const wake = producer.wake;

  function startJob(job: Job, workerId: number): void {
    const controller = new AbortController();
    const done = runJob(options, { job, workerId, controller, completions, stopping: () => stopping }).finally(() => {
      running.delete(job.id);
      producer.slotFreed();
    });
    running.set(job.id, { kind: job.kind, controller, done });
  }

  // When the worker session is lost (database restart, network cut, or this process was declared dead after
  // a freeze), this process's claims are void: other processes may already have ended its jobs. Abort what it
  // runs and record that where it still can; the presence then opens a new session under a new worker id.
  async function abandonClaims(lost: WorkerSession, error: Error): Promise<void> {
    logger.error("worker session lost; aborting this process's running jobs", { workerId: lost.workerId, err: error });
    for (const job of running.values()) job.controller.abort(SESSION_LOST);
    await Promise.allSettled([...running.values()].map((job) => job.done));
    await interruptRemaining(options, lost.workerId, SESSION_LOST, {
      done: 'jobs interrupted: the worker session was lost',
      failed: null,
    });
  }

  presence.onLost(abandonClaims);
  presence.onReady(wake);
  // The listener reconnected: the database is back, so claim now rather than at the next poll.
  options.onDatabaseBack?.(wake);
  options.onJobChanged((change) => {
    if (change.status === 'queued') wake();
    else if (change.cancel && change.status === 'running') running.get(change.id)?.controller.abort(CANCELLED);
  });
  const poll = setInterval(() => {
    wake();
    void checkCancelRequests(pool, presence, running);
  }, options.pollIntervalMs);
  wake();

  return {
    runningCount: () => running.size,
    notReadyReason: () => {
      if (!presence.session()) return 'the runner has no database session';
      return producer.claimFailing() ? 'the runner cannot claim jobs' : null;
    },
    stop: async (graceMs) => {
      stopping = true;
      clearInterval(poll);
      producer.stop();
      await drain(running, graceMs);
      const current = presence.session();
      // Before the lock is released (the app closes the presence after this): end whatever still runs here, so
      // no job outlives a graceful stop as running. When the database cannot take it (an outage), stop anyway:
      // once this session's lock is gone, recovery on the next process to start (or any other running one)
      // ends those jobs as interrupted.
      if (current) {
        await interruptRemaining(options, current.workerId, SHUTDOWN, {
          done: 'jobs interrupted by shutdown',
          failed: 'could not record the interruption of running jobs at shutdown; recovery will',
        });
      }
    },
  };
}

// The backstop for cancel notifications this process missed: the rows say which of its jobs to stop.
async function checkCancelRequests(pool: DatabasePool, presence: WorkerPresence, running: Map<string, RunningJob>): Promise<void> {
  const current = presence.session();
  if (!current || running.size === 0) return;
  try {
    for (const id of await listCancelRequestedJobsOfWorker(pool, current.workerId)) running.get(id)?.controller.abort(CANCELLED);
  } catch (error) {
    logger.warn('could not check for cancel requests', { err: error });
  }
}

/** One attempt of a claimed job: execute it (executor.ts), then record how it ended (completer.ts). */
async function runJob(
  options: RunnerOptions,
  attempt: { job: Job; workerId: number; controller: AbortController; completions: CompletionBatcher; stopping: () => boolean },
): Promise<void> {
  const { job, workerId, controller, completions, stopping } = attempt;
  const { pool } = options;
  const claim = { id: job.id, workerId, attempt: job.attempt };
  const progress = createProgressWriter((fraction) => updateJobProgress(pool, claim, fraction));
  const startedAt = performance.now();
  options.metrics.attemptStarted(job);
  logger.info('job started', { jobId: job.id, kind: job.kind, attempt: job.attempt, workerId });
  logger.debug('job input', { jobId: job.id, input: job.input });
  const kind = options.kinds.find(job.kind);
  const outcome = await executeAttempt(job, { kind, controller, abortGraceMs: options.abortGraceMs, progress: progress.report });
  const runSeconds = (performance.now() - startedAt) / 1000;
  await progress.close();
  await recordOutcome({
    pool,
    job,
    claim,
    outcome,
    runSeconds,
    retryBackoffMs: kind?.retryBackoffMs ?? options.retryBackoffMs,
    metrics: options.metrics,
    completions,
    stopping,
  });
}

/** Waits up to `graceMs` for the running jobs, then aborts the rest as SHUTDOWN and gives them a moment. */
async function drain(running: Map<string, RunningJob>, graceMs: number): Promise<void> {
  const allDone = () => Promise.allSettled([...running.values()].map((job) => job.done));
  await settledWithin(allDone(), graceMs);
  if (running.size === 0) return;
  logger.warn('grace period over; aborting running jobs', { count: running.size });
  for (const job of running.values()) job.controller.abort(SHUTDOWN);
  // Handlers that honour the signal record INTERRUPTED themselves; give them a moment.
  await settledWithin(allDone(), 1000);
}

/** Ends as `reason` whatever still runs under `workerId`; if the database cannot take it, recovery will. */
async function interruptRemaining(
  options: { pool: DatabasePool; retryBackoffMs: number; metrics: Metrics },
  workerId: number,
  reason: Interruption,
  logs: { done: string; failed: string | null },
): Promise<void> {
  const interrupted = await interruptJobsOfWorker(options.pool, workerId, reason, options.retryBackoffMs).catch((error: unknown) => {
    if (logs.failed) logger.warn(logs.failed, { err: error });
    return [];
  });
  options.metrics.jobsEnded(interrupted);
  if (interrupted.length > 0) logger.warn(logs.done, { workerId, jobIds: interrupted.map((job) => job.id) });
}

/** Waits for `promise` or `ms`, whichever comes first, without leaving a timer behind. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  const timeout = new AbortController();
  await Promise.race([promise, sleep(ms, undefined, { signal: timeout.signal }).catch(() => {})]);
  timeout.abort();
}
