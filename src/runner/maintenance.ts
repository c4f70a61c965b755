import type { DatabasePool } from 'slonik';
import { deleteFinishedJobs, recoverJobsOfDeadWorkers } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';

const RETENTION_BATCH = 500;
const RETENTION_EVERY_MS = 60_000;

/**
 * Background upkeep that every process does, API-only ones included, so that no single process is needed:
 * recovering the running jobs of processes that died (a few times per lease, so it happens within
 * JOB_LEASE_MS without any restart), and deleting finished jobs past their retention in small batches (each
 * a short transaction; SKIP LOCKED keeps two processes off the same rows).
 */
export function startMaintenance(options: {
  pool: DatabasePool;
  leaseMs: number;
  retentionMs: number;
  retryBackoffMs: number;
  metrics: Metrics;
}) {
  const { pool } = options;
  let stopped = false;

  async function recover(): Promise<void> {
    try {
      await recoverDeadWorkers(pool, options.retryBackoffMs, options.metrics);
    } catch (error) {
      logger.warn('recovery of dead workers failed; will retry', { err: error });
    }
  }

  async function prune(): Promise<void> {
    if (options.retentionMs <= 0) return;
    try {
      let deleted = 0;
      for (let batch = RETENTION_BATCH; batch === RETENTION_BATCH && !stopped; ) {
        batch = await deleteFinishedJobs(pool, options.retentionMs, RETENTION_BATCH);
        deleted += batch;
      }
      if (deleted > 0) logger.info('deleted finished jobs past their retention', { count: deleted });
    } catch (error) {
      logger.warn('retention failed; will retry', { err: error });
    }
  }

  const recovery = setInterval(() => void recover(), Math.max(1000, Math.floor(options.leaseMs / 3)));
  const retention = setInterval(() => void prune(), RETENTION_EVERY_MS);
  void prune();
  return {
    stop: () => {
      stopped = true;
      clearInterval(recovery);
      clearInterval(retention);
    },
  };
}

/** Ends the running attempts of processes that are gone (see recoverJobsOfDeadWorkers); at startup and on a timer. */
export async function recoverDeadWorkers(pool: DatabasePool, retryBackoffMs: number, metrics: Metrics): Promise<void> {
  const recovered = await recoverJobsOfDeadWorkers(pool, retryBackoffMs);
  metrics.jobsEnded(recovered);
  if (recovered.length > 0) {
    logger.warn('recovered the running jobs of processes that are gone', {
      count: recovered.length,
      jobIds: recovered.slice(0, 50).map((job) => job.id),
    });
  }
}
