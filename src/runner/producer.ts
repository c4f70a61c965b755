import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from 'slonik';
import type { Job } from '../jobs/job.ts';
import { claimNextJobs, findNextRunAt, type KindClaim, releaseClaimedJobs } from '../jobs/job-queries.ts';
import type { JobKind } from '../kinds/kind.ts';
import { logger } from '../logger.ts';
import type { WorkerPresence } from './worker-session.ts';

export type Producer = {
  /** Claims into free slots now (a NOTIFY, the poll, a new session). */
  wake: () => void;
  /** A job ended here and freed its slot: claims again only if the last claim may have left due jobs behind. */
  slotFreed: () => void;
  /** True while the last claim failed (for /readyz). */
  claimFailing: () => boolean;
  /** Stops the due timer; the runner's `stopping` already keeps the loop from claiming. */
  stop: () => void;
};

export type ProducerOptions = {
  pool: DatabasePool;
  presence: WorkerPresence;
  /** The kinds this process runs: the only ones it claims, each within its own concurrency. */
  kinds: readonly JobKind[];
  concurrency: number;
  pollIntervalMs: number;
  runningCount: () => number;
  /** Jobs of this kind running here now. */
  runningOf: (kind: string) => number;
  /** Called for each claim statement run (a metric: claims follow wake-ups, never a loop over saturated kinds). */
  onClaim: () => void;
  stopping: () => boolean;
  startJob: (job: Job, workerId: number) => void;
};

/**
 * Claims queued jobs into this process's free slots and hands each to `startJob`: never more than the slots
 * (WORKER_CONCURRENCY), never more of a kind than its `concurrency`, never a kind this process does not run,
 * never while the session is not trusted. Woken by the runner (a queued job, a finished one, the poll);
 * between wake-ups, a due timer starts jobs scheduled for later.
 */
export function createProducer(options: ProducerOptions): Producer {
  let filling = false;
  let fillAgain = false;
  let dueTimer: NodeJS.Timeout | null = null;
  let claimFailing = false;
  // Whether the last claim may have left due jobs in the queue: it filled every free slot, a kind's concurrency
  // held it back, or it failed. Otherwise nothing else was due when it ran, and any job that became due since
  // comes with its own wake-up (a NOTIFY of a queued job, the due timer, the poll), so a freed slot need not
  // ask again: at a low rate that is two statements saved per job, and no claim in the way of the next NOTIFY.
  let backlog = true;

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
          const wanted = claimableKinds(options, free);
          // Every kind here is at its limit: nothing to ask for. A job that ends wakes this loop again.
          if (wanted.length === 0) {
            backlog = true;
            break;
          }
          const jobs = await claimNextJobs(options.pool, workerId, free, wanted);
          options.onClaim();
          const heldBack = wanted.length < options.kinds.length || wanted.some((kind) => kind.free < free);
          backlog = jobs.length >= free || heldBack;
          // The claim keeps to `free` and each kind's share by construction; should it ever return more, this
          // process still never runs more than its limits: the excess goes back to the queue for anyone.
          const { fitting, excess } = splitExcess(jobs, free, wanted);
          for (const job of fitting) options.startJob(job, workerId);
          if (excess.length > 0) await releaseExcess(options.pool, excess, workerId, free);
          if (jobs.length === 0 || !backlog) break;
        }
      } while (fillAgain && !options.stopping());
      if (!options.stopping() && options.runningCount() < options.concurrency) await armDueTimer();
      claimFailing = false;
    } catch (error) {
      claimFailing = true;
      backlog = true;
      logger.error('claiming jobs failed; will retry at the next poll', { err: error });
    } finally {
      filling = false;
      // A wake-up that came after the loop's last look (while the due timer's query ran) was only noted in
      // fillAgain: go round again, or it would wait for the poll (a job queued then sat for POLL_INTERVAL_MS).
      if (fillAgain && !options.stopping()) wake();
    }
  }

  // A job scheduled for later (runAt, or a retry after backoff) starts on time without tight polling: an
  // idle runner sleeps until the next one falls due. Other processes may take it first; SKIP LOCKED decides.
  async function armDueTimer(): Promise<void> {
    const delayMs = await findNextRunAt(
      options.pool,
      claimableKinds(options, options.concurrency - options.runningCount()).map((kind) => kind.kind),
    );
    if (dueTimer) clearTimeout(dueTimer);
    dueTimer = null;
    if (delayMs !== null && delayMs > 0 && delayMs < options.pollIntervalMs) {
      dueTimer = setTimeout(wake, Math.ceil(delayMs));
    }
  }

  return {
    wake,
    slotFreed: () => {
      if (backlog) wake();
    },
    claimFailing: () => claimFailing,
    stop: () => {
      if (dueTimer) clearTimeout(dueTimer);
    },
  };
}

/**
 * What each kind may still take: the free slots, or fewer for a kind with a concurrency limit. Kinds at their
 * limit are left out, so the claim never takes (and then has to give back) a job this process cannot run.
 */
function claimableKinds(options: Pick<ProducerOptions, 'kinds' | 'runningOf'>, free: number): KindClaim[] {
  return options.kinds.flatMap((kind) => {
    const share = kind.concurrency === undefined ? free : Math.min(free, kind.concurrency - options.runningOf(kind.name));
    return share > 0 ? [{ kind: kind.name, free: share, maxAttempts: kind.maxAttempts ?? 1, timeoutMs: kind.timeoutMs ?? null }] : [];
  });
}

/** The claimed jobs within the free slots and each kind's share, in claim order, and the rest. */
function splitExcess(jobs: readonly Job[], free: number, wanted: readonly KindClaim[]): { fitting: Job[]; excess: Job[] } {
  const left = new Map(wanted.map((kind) => [kind.kind, kind.free]));
  const fitting: Job[] = [];
  const excess: Job[] = [];
  for (const job of jobs) {
    const share = left.get(job.kind) ?? 0;
    if (fitting.length < free && share > 0) {
      fitting.push(job);
      left.set(job.kind, share - 1);
    } else excess.push(job);
  }
  return { fitting, excess };
}

/** Puts back in the queue jobs a claim returned beyond the limits (a bug if it ever happens: logged as an error). */
async function releaseExcess(pool: DatabasePool, jobs: readonly Job[], workerId: number, free: number): Promise<void> {
  const claims = jobs.map((job) => ({ id: job.id, workerId, attempt: job.attempt }));
  logger.error("a claim returned more jobs than free slots or a kind's share; putting the excess back in the queue", {
    workerId,
    free,
    jobIds: claims.map((claim) => claim.id),
  });
  // Until this reaches the database the jobs are RUNNING under this live process and nobody would take them.
  for (let attempt = 1; ; attempt++) {
    try {
      await releaseClaimedJobs(pool, claims);
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(200 * 2 ** attempt);
    }
  }
}
