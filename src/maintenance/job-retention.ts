import type { DatabasePool } from 'slonik';
import { deleteFinishedJobs } from '../jobs/job-queries.ts';
import { startPeriodicDeletion } from './periodic-deletion.ts';

/**
 * Deletes finished jobs past JOB_RETENTION, in every process: at start and then every minute, in batches of
 * 500 (each a short transaction; SKIP LOCKED keeps two processes off the same rows). 0 keeps them.
 */
export function startJobRetention(options: { pool: DatabasePool; retentionMs: number; intervalMs?: number }) {
  return startPeriodicDeletion({
    what: 'finished jobs',
    retentionMs: options.retentionMs,
    batch: 500,
    intervalMs: options.intervalMs ?? 60_000,
    runAtStart: true,
    deleteBatch: (retentionMs, batch) => deleteFinishedJobs(options.pool, retentionMs, batch),
  });
}
