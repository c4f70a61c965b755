import type { JobStatus } from './job.ts';
import { jobStatuses } from './job.ts';
import type { KindStatusCount, MinuteBucket, QueueChanges } from './job-queries.ts';

// Dashboards' numbers, shaped from what job-queries.ts reads (pure functions: the SQL stays there).

export type JobStats = {
  /** When the numbers were read (the database's clock). */
  at: string;
  /** The start of the window that the finished statuses are counted over. */
  finishedSince: string;
  finishedWithinMinutes: number;
  /** Every status, in jobStatuses' order. */
  byStatus: readonly { status: JobStatus; count: number }[];
  /** Non-zero (kind, status) pairs, by kind then status. */
  byKind: readonly { kind: string; status: JobStatus; count: number }[];
  scheduled: number;
  oldestQueuedAgeSeconds: number | null;
  oldestDueQueuedAgeSeconds: number | null;
};

const oldest = (values: readonly (number | null)[]): number | null =>
  values.reduce<number | null>((max, value) => (value === null ? max : max === null ? value : Math.max(max, value)), null);

export function summarizeCounts(
  read: { at: string; finishedSince: string; counts: readonly KindStatusCount[] },
  finishedWithinMinutes: number,
): JobStats {
  const byStatus = jobStatuses.map((status) => ({
    status,
    count: read.counts.filter((row) => row.status === status).reduce((sum, row) => sum + row.count, 0),
  }));
  return {
    at: read.at,
    finishedSince: read.finishedSince,
    finishedWithinMinutes,
    byStatus,
    byKind: read.counts.map(({ kind, status, count }) => ({ kind, status, count })),
    scheduled: read.counts.reduce((sum, row) => sum + row.scheduled, 0),
    oldestQueuedAgeSeconds: oldest(read.counts.map((row) => row.oldestAgeSeconds)),
    oldestDueQueuedAgeSeconds: oldest(read.counts.map((row) => row.oldestDueAgeSeconds)),
  };
}

export type ThroughputBucket = MinuteBucket & { queueDepth: number | null };

const MINUTE_MS = 60_000;

/**
 * Adds the queue depth at the end of each minute (the last, current minute: now) to the finished counts:
 * the QUEUED count now, minus the net changes recorded after that moment, walking back from the newest
 * minute. Null where the event log no longer holds every change after that moment (see
 * countQueueChangesPerMinute), so a number shown is exact, not a guess.
 */
export function withQueueDepth(buckets: readonly MinuteBucket[], queue: QueueChanges): ThroughputBucket[] {
  const deltas = new Map(queue.changes.map((change) => [change.minute, change.delta]));
  const completeSince = queue.completeSince === null ? null : Date.parse(queue.completeSince);
  let depth = queue.queuedNow - (deltas.get(null) ?? 0);
  const result: ThroughputBucket[] = [];
  for (let i = buckets.length - 1; i >= 0; i--) {
    const bucket = buckets[i] as MinuteBucket;
    const isCurrent = i === buckets.length - 1;
    // The current minute ends now; every earlier one ends where the next begins.
    // Strictly after: changes recorded at that very instant may be only partly in the log (a capped read).
    const known = isCurrent || (completeSince !== null && Date.parse(bucket.start) + MINUTE_MS > completeSince);
    if (!isCurrent) depth -= deltas.get((buckets[i + 1] as MinuteBucket).start) ?? 0;
    result.push({ ...bucket, queueDepth: known ? depth : null });
  }
  return result.reverse();
}
