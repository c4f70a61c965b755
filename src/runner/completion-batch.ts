import type { DatabasePool } from 'slonik';
import type { Job, JsonValue } from '../jobs/job.ts';
import { type Claim, completeJobs } from '../jobs/job-queries.ts';

/** At most this many completions in one statement: bounds the statement's size and each commit's row locks. */
export const MAX_COMPLETION_BATCH = 100;

export type CompletionBatcher = {
  /**
   * Writes one successful attempt's end, guarded by its claim: the job as completed, or null when the claim
   * was no longer this process's. Rejects when the statement failed (the caller retries, as for any write).
   */
  complete: (claim: Claim, result: JsonValue) => Promise<Job | null>;
};

type Pending = { claim: Claim; result: JsonValue; resolve: (job: Job | null) => void; reject: (error: unknown) => void };

/**
 * Group commit for successful completions. Every commit of a job change waits on PostgreSQL's notify-queue
 * lock (the jobs triggers send a NOTIFY per statement), held through the commit's WAL flush, so committing one
 * job at a time serialises the runner's slots on that lock (README, "Where the time goes"). Here a completion is written at
 * once when no completion statement is in flight (no added latency when idle); while one is, the next ones
 * queue, and when it returns they are all written in one statement and one commit (completeJobs), up to
 * MAX_COMPLETION_BATCH. Nothing waits on a timer: the batch is exactly what finished during the previous
 * round trip. Each job's caller waits for its own row, so the runner's slot, its log line and metrics, its
 * retries, and its shutdown (runner.stop waits for every job's `done`, which includes this write, before the
 * pool closes) are per job as before.
 */
export function createCompletionBatcher(pool: DatabasePool, onWrite: (jobs: number) => void): CompletionBatcher {
  const queue: Pending[] = [];
  let writing = false;

  async function writeQueued(): Promise<void> {
    writing = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, MAX_COMPLETION_BATCH);
        try {
          const written = await completeJobs(pool, batch);
          onWrite(batch.length);
          // A job id can appear twice only under two different claims (a lost claim's late end, and the job's
          // new attempt here): the claim, not the id, says whose row came back.
          const byClaim = new Map(
            written.map((job) => [claimKey({ id: job.id, workerId: job.workerId ?? -1, attempt: job.attempt }), job]),
          );
          for (const pending of batch) pending.resolve(byClaim.get(claimKey(pending.claim)) ?? null);
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      writing = false;
    }
  }

  return {
    complete: (claim, result) =>
      new Promise<Job | null>((resolve, reject) => {
        queue.push({ claim, result, resolve, reject });
        if (!writing) void writeQueued();
      }),
  };
}

const claimKey = (claim: Claim) => `${claim.id}/${claim.workerId}/${claim.attempt}`;
