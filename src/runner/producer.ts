import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from 'slonik';
import type { Job } from '../jobs/job.ts';
import { claimNextJobs, findNextRunAt, releaseClaimedJobs } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';
import type { WorkerPresence } from './worker-session.ts';

export type Producer = {
  /** Claims into free slots now (a NOTIFY, a freed slot, the poll, a new session). */
  wake: () => void;
  /** True while the last claim failed (for /readyz). */
  claimFailing: () => boolean;
  /** Stops the due timer; the runner's `stopping` already keeps the loop from claiming. */
  stop: () => void;
};

export type ProducerOptions = {
  pool: DatabasePool;
  presence: WorkerPresence;
  concurrency: number;
  pollIntervalMs: number;
  runningCount: () => number;
  stopping: () => boolean;
  startJob: (job: Job, workerId: number) => void;
};

/**
 * Claims queued jobs into this process's free slots and hands each to `startJob`: never more than the slots,
 * never while the session is not trusted. Woken by the runner; between wake-ups, a due timer starts jobs
 * scheduled for later.
 */
export function createProducer(options: ProducerOptions): Producer {
  let filling = false;
  let fillAgain = false;
  let dueTimer: NodeJS.Timeout | null = null;
  let claimFailing = false;

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
        while (!options.stopping() && options.runningCount() < options.concurrency) {
          // No claim while this process has not proven it is alive recently (after a freeze, until the next
          // heartbeat is answered): it may have been declared dead, and its claims would be void.
          const session = options.presence.session();
          if (!session?.isTrusted()) break;
          const { workerId } = session;
          const free = options.concurrency - options.runningCount();
          const jobs = await claimNextJobs(options.pool, workerId, free);
          // The claim takes at most `free` by construction; should it ever return more, this process still
          // never runs more than its slots: the excess goes back to the queue for any process to take.
          for (const job of jobs.slice(0, free)) options.startJob(job, workerId);
          if (jobs.length > free) await releaseExcess(jobs.slice(free), workerId, free);
          if (jobs.length === 0) break;
        }
      } while (fillAgain && !options.stopping());
      if (!options.stopping() && options.runningCount() < options.concurrency) await armDueTimer();
      claimFailing = false;
    } catch (error) {
      claimFailing = true;
      logger.error('claiming jobs failed; will retry at the next poll', { err: error });
    } finally {
      filling = false;
    }
  }

  async function releaseExcess(jobs: readonly Job[], workerId: number, free: number): Promise<void> {
    const claims = jobs.map((job) => ({ id: job.id, workerId, attempt: job.attempt }));
    logger.error('a claim returned more jobs than free slots; putting the excess back in the queue', {
      workerId,
      free,
      jobIds: claims.map((claim) => claim.id),
    });
    // Until this reaches the database the jobs are RUNNING under this live process and nobody would take them.
    for (let attempt = 1; ; attempt++) {
      try {
        await releaseClaimedJobs(options.pool, claims);
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(200 * 2 ** attempt);
      }
    }
  }

  // A job scheduled for later (runAt, or a retry after backoff) starts on time without tight polling: an
  // idle runner sleeps until the next one falls due. Other processes may take it first; SKIP LOCKED decides.
  async function armDueTimer(): Promise<void> {
    const delayMs = await findNextRunAt(options.pool);
    if (dueTimer) clearTimeout(dueTimer);
    dueTimer = null;
    if (delayMs !== null && delayMs > 0 && delayMs < options.pollIntervalMs) {
      dueTimer = setTimeout(wake, Math.ceil(delayMs));
    }
  }

  return {
    wake,
    claimFailing: () => claimFailing,
    stop: () => {
      if (dueTimer) clearTimeout(dueTimer);
    },
  };
}
