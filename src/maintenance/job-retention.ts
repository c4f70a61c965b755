import type { DatabasePool } from 'slonik';
import { deleteFinishedJobs } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';

const BATCH = 500;
const EVERY_MS = 60_000;

/**
 * Deletes finished jobs past JOB_RETENTION, in every process: at start and then every minute, in small
 * batches (each a short transaction; SKIP LOCKED keeps two processes off the same rows). 0 keeps them.
 */
export function startJobRetention(options: { pool: DatabasePool; retentionMs: number; intervalMs?: number }) {
  let stopped = false;
  async function runOnce(): Promise<number> {
    if (options.retentionMs <= 0) return 0;
    let deleted = 0;
    try {
      for (let batch = BATCH; batch === BATCH && !stopped; ) {
        batch = await deleteFinishedJobs(options.pool, options.retentionMs, BATCH);
        deleted += batch;
      }
      if (deleted > 0) logger.info('deleted finished jobs past their retention', { count: deleted });
    } catch (error) {
      logger.warn('retention failed; will retry', { err: error });
    }
    return deleted;
  }
  const timer = setInterval(() => void runOnce(), options.intervalMs ?? EVERY_MS);
  void runOnce();
  return {
    /** One pass now; resolves to the number of jobs deleted. */
    runOnce,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
