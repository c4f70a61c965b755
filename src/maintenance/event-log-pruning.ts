import type { DatabasePool } from 'slonik';
import { pruneJobEvents } from '../jobs/job-queries.ts';
import { startPeriodicDeletion } from './periodic-deletion.ts';

/**
 * Deletes job events older than EVENT_LOG_RETENTION, in every process (the log is shared): it is only needed
 * for live streams and resumes (`Last-Event-ID`), and a client further behind gets the current state instead.
 * Every minute, in batches of 1000 rows; 0 keeps the log forever.
 */
export function startEventLogPruning(options: { pool: DatabasePool; retentionMs: number; intervalMs?: number }) {
  return startPeriodicDeletion({
    what: 'job events',
    retentionMs: options.retentionMs,
    batch: 1000,
    intervalMs: options.intervalMs ?? 60_000,
    runAtStart: false,
    deleteBatch: (retentionMs, batch) => pruneJobEvents(options.pool, retentionMs, batch),
  });
}
