import type { DatabasePool } from 'slonik';
import { pruneJobEvents } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';

const BATCH = 1000;
const EVERY_MS = 60_000;

/**
 * Deletes job events older than EVENT_LOG_RETENTION, in every process (the log is shared): it is only needed
 * for live streams and resumes (`Last-Event-ID`), and a client further behind gets the current state instead.
 * Every minute, in batches of 1000 rows; 0 keeps the log forever.
 */
export function startEventLogPruning(options: { pool: DatabasePool; retentionMs: number; intervalMs?: number }) {
  let stopped = false;
  async function runOnce(): Promise<number> {
    if (options.retentionMs <= 0) return 0;
    let deleted = 0;
    try {
      for (let batch = BATCH; batch === BATCH && !stopped; ) {
        batch = await pruneJobEvents(options.pool, options.retentionMs, BATCH);
        deleted += batch;
      }
    } catch (error) {
      logger.warn('could not prune job events', { err: error });
    }
    return deleted;
  }
  const timer = setInterval(() => void runOnce(), options.intervalMs ?? EVERY_MS);
  return {
    /** One pass now; resolves to the number of events deleted. */
    runOnce,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
