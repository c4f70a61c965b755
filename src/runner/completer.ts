import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from 'slonik';
import type { Job } from '../jobs/job.ts';
import { type Claim, endFailedAttempt, failClaimedJob } from '../jobs/job-queries.ts';
import { clipForLog, logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { CompletionBatcher } from './completion-batch.ts';
import type { Outcome } from './executor.ts';

/**
 * Writes how an attempt ended, guarded by its claim (a write for a claim that is no longer this process's
 * changes nothing), retrying a failed write a few times with backoff. How the attempt ends (retry, FAILED,
 * a cancel request winning) is decided in one place, endAttempt in job-queries.ts. A success goes through the
 * completion batcher (a retry joins its next batch); failures are rarer and stay one statement each.
 */
export async function recordOutcome(options: {
  pool: DatabasePool;
  job: Job;
  claim: Claim;
  outcome: Outcome;
  runSeconds: number;
  retryBackoffMs: number;
  metrics: Metrics;
  /** Writes successful ends, several jobs' in one statement when they finish during one another's write. */
  completions: CompletionBatcher;
  /** True once the runner stops: a failing write is then not retried (recovery ends the job). */
  stopping: () => boolean;
}): Promise<void> {
  const { job, claim, outcome, runSeconds } = options;
  // The end must reach the database, or the job would stay running for as long as this process lives.
  for (let attempt = 1; ; attempt++) {
    try {
      const finished =
        'result' in outcome
          ? await options.completions.complete(claim, outcome.result)
          : outcome.final
            ? await failClaimedJob(options.pool, claim, outcome.error)
            : await endFailedAttempt(options.pool, claim, outcome.error, options.retryBackoffMs);
      options.metrics.attemptEnded(job.kind, runSeconds, finished);
      // One line per attempt's end with what an operator needs: which job, which attempt, how long it ran, and
      // on failure why (the attempt's own error: a queued or cancelled job's row may not show it).
      const ended = {
        jobId: job.id,
        kind: job.kind,
        attempt: job.attempt,
        durationMs: Math.round(runSeconds * 10_000) / 10,
        ...('error' in outcome ? { errorCode: outcome.error.code, errorMessage: clipForLog(outcome.error.message) } : {}),
      };
      if (!finished) logger.warn('job finished after losing its claim; its recorded state stands', ended);
      else if (finished.status === 'queued') logger.info('job queued for another attempt', { ...ended, runAt: finished.runAt });
      else logger.info(`job ${finished.status}`, ended);
      if (finished?.status === 'completed') logger.debug('job result', { jobId: job.id, result: finished.result });
      return;
    } catch (error) {
      if (attempt >= 5 || options.stopping()) {
        logger.error('could not record the end of a job', { jobId: job.id, err: error });
        return;
      }
      await sleep(200 * 2 ** attempt);
    }
  }
}
