import type { DatabasePool } from 'slonik';
import {
  endOverdueJobs,
  endRunningJobsOfWorkers,
  type KindTimeouts,
  recoverJobsOfDeadWorkers,
  removeUnresponsiveWorkers,
  terminateSessionsOfUnresponsiveProcesses,
} from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';

/**
 * Recovery of dead workers, which every process runs, API-only ones included, so that no single process is
 * needed: at startup (before the port opens) and then a few times per lease, so that the running jobs of a
 * process that died or stopped answering, and attempts past their timeout or cancel request, are ended within
 * about JOB_LEASE_MS without any restart.
 */
export function startWorkerRecovery(options: RecoveryOptions & { intervalMs?: number }): { stop: () => void } {
  const run = async () => {
    try {
      await recoverDeadWorkers(options);
    } catch (error) {
      logger.warn('recovery of dead workers failed; will retry', { err: error });
    }
  };
  const timer = setInterval(() => void run(), options.intervalMs ?? Math.max(1000, Math.floor(options.leaseMs / 3)));
  return { stop: () => clearInterval(timer) };
}

export type RecoveryOptions = {
  pool: DatabasePool;
  leaseMs: number;
  abortGraceMs: number;
  retryBackoffMs: number;
  metrics: Metrics;
  /** Default timeouts by kind (of jobs that have none of their own, e.g. enqueued by SQL): this process's kinds'. */
  kindTimeouts: KindTimeouts;
};

/**
 * Ends the running attempts that no live process will end; at startup and on a timer. Three passes, each
 * run even when one before it failed:
 * - processes that have not written a heartbeat for the lease (SIGSTOP, a blocked event loop, a VM pause):
 *   their sessions are terminated too, which frees their lock and their place in the notification queue;
 * - processes whose lock is free (crash, SIGKILL, lost session): at once, the fast path;
 * - attempts past their timeout or cancel request by more than ABORT_GRACE_MS + the lease, whoever runs them.
 */
export async function recoverDeadWorkers(options: RecoveryOptions): Promise<void> {
  const { pool, metrics } = options;
  const { kindTimeouts } = options;
  const passes = [
    () => recoverUnresponsiveWorkers(options, kindTimeouts),
    async () => {
      const recovered = await recoverJobsOfDeadWorkers(pool, options.retryBackoffMs);
      metrics.jobsEnded(recovered);
      if (recovered.length > 0) {
        logger.warn('recovered the running jobs of processes that are gone', {
          count: recovered.length,
          jobIds: recovered.slice(0, 50).map((job) => job.id),
        });
      }
    },
    async () => {
      const ended = await endOverdueJobs(pool, { ...options, backoffBaseMs: options.retryBackoffMs, kindTimeouts });
      metrics.jobsEnded(ended);
      if (ended.length > 0) {
        logger.warn('ended running jobs past their timeout or cancel request', {
          count: ended.length,
          jobIds: ended.slice(0, 50).map((job) => job.id),
        });
      }
    },
  ];
  let failure: unknown = null;
  for (const pass of passes) {
    await pass().catch((error: unknown) => {
      failure ??= error;
    });
  }
  if (failure) throw failure;
}

/**
 * One transaction: the unresponsive processes' rows are deleted (so each is recovered once, by one process),
 * their sessions terminated, and their running attempts ended. A process that resumes meanwhile finds its
 * heartbeat refused and its sessions gone, and its late writes are refused by the claim guard.
 */
async function recoverUnresponsiveWorkers(options: RecoveryOptions, kindTimeouts: KindTimeouts): Promise<void> {
  const { workers, terminated, ended } = await options.pool.transaction(async (tx) => {
    const workers = await removeUnresponsiveWorkers(tx, options.leaseMs);
    if (workers.length === 0) return { workers, terminated: 0, ended: [] };
    const tags = [...new Set(workers.map((worker) => worker.sessionTag))];
    const terminated = await terminateSessionsOfUnresponsiveProcesses(tx, tags, options.leaseMs);
    const ended = await endRunningJobsOfWorkers(
      tx,
      workers.map((worker) => worker.id),
      { backoffBaseMs: options.retryBackoffMs, kindTimeouts },
    );
    return { workers, terminated, ended };
  });
  options.metrics.jobsEnded(ended);
  if (workers.length > 0 && terminated === 0 && ended.length === 0) {
    // Typically processes that crashed (their jobs went by the lock path) or stopped without deregistering.
    logger.info('removed the rows of processes that are gone', { workerIds: workers.map((worker) => worker.id) });
  } else if (workers.length > 0) {
    logger.warn('recovered the jobs of processes that stopped answering', {
      workerIds: workers.map((worker) => worker.id),
      sessionsTerminated: terminated,
      count: ended.length,
      jobIds: ended.slice(0, 50).map((job) => job.id),
    });
  }
}
