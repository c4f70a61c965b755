import { setTimeout as sleep } from 'node:timers/promises';
import { badUserInput, JobqlError } from '../jobs/errors.ts';
import { type Job, terminalStatuses } from '../jobs/job.ts';
import type { JobService } from '../jobs/job-service.ts';
import type { JobWatch } from './job-watch.ts';
import type { JobsFilter } from './jobs-feed.ts';
import type { LiveHub } from './live-hub.ts';

export const MAX_AWAIT_MS = 60_000;

// The live-status use cases behind the Subscription type and awaitJob, for one tenant (that of `jobs`).
// Each stream yields jobs; a job carries its revision, which the transports use to resume (SSE's event id).

export function createLiveService(jobs: JobService, hub: LiveHub) {
  return {
    /**
     * The job as it is now (unless the client already has that revision), then every later change in revision
     * order, ending after a terminal state. The watch is attached before the snapshot is read, so a change made
     * between the two is not missed; events at or below the revision already sent are dropped, so none repeats.
     * Checks (id, existence, limits) happen before the stream is returned, so they fail the subscription itself.
     */
    async jobUpdated(id: string, afterRevision: number | null, signal?: AbortSignal): Promise<AsyncGenerator<Job>> {
      if (afterRevision !== null && (!Number.isInteger(afterRevision) || afterRevision < 0)) {
        throw badUserInput('afterRevision must be a whole number of at least 0', { argument: 'afterRevision' });
      }
      const watch = hub.watchJob(jobs.parseId(id), jobs.tenant);
      let snapshot: Job | null;
      try {
        snapshot = await jobs.getJob(id);
      } catch (error) {
        watch.close();
        throw error;
      }
      if (!snapshot) {
        watch.close();
        throw new JobqlError('NOT_FOUND', `no job with id ${id}`);
      }
      return closingWatchOnReturn(watch, followJob({ jobs, id, watch, snapshot, afterRevision, signal }));
    },

    /** Every change of this tenant's jobs matching the filter, for dashboards, as the job was at that change. */
    jobsUpdated(filter: Omit<JobsFilter, 'tenant'>): AsyncGenerator<Job> {
      const watch = hub.watchJobs({ ...filter, tenant: jobs.tenant });
      return closingWatchOnReturn(
        watch,
        (async function* stream(): AsyncGenerator<Job> {
          try {
            for (;;) {
              const job = await watch.next();
              if (!job) return;
              yield job;
            }
          } finally {
            watch.close();
          }
        })(),
      );
    },

    /** AIP-151's WaitOperation: the job once it is terminal, or as it is when `timeoutMs` (capped) runs out. */
    async awaitJob(id: string, timeoutMs: number): Promise<Job | null> {
      if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_AWAIT_MS) {
        throw badUserInput(`timeoutMs must be between 0 and ${MAX_AWAIT_MS}`, { argument: 'timeoutMs' });
      }
      const first = await jobs.getJob(id);
      if (!first || isTerminal(first) || timeoutMs === 0) return first;
      const deadline = new AbortController();
      const timer = sleep(timeoutMs, undefined, { signal: deadline.signal }).then(
        () => deadline.abort(),
        () => {},
      );
      let last: Job | null = first;
      try {
        for await (const job of await this.jobUpdated(id, first.revision, deadline.signal)) {
          last = job;
          if (isTerminal(job)) break;
        }
      } finally {
        deadline.abort();
        await timer;
      }
      // The stream ends at the deadline; the row is the truth of "as it is now".
      return isTerminal(last) ? last : ((await jobs.getJob(id)) ?? last);
    },
  };
}

export type LiveService = ReturnType<typeof createLiveService>;

type Follow = {
  jobs: JobService;
  id: string;
  watch: JobWatch;
  snapshot: Job;
  afterRevision: number | null;
  signal: AbortSignal | undefined;
};

/** jobUpdated's stream: the snapshot (unless the client has it), then each later revision once, in order. */
async function* followJob({ jobs, id, watch, snapshot, afterRevision, signal }: Follow): AsyncGenerator<Job> {
  try {
    let sent = afterRevision ?? 0;
    let job: Job | null = snapshot;
    // A client resuming behind the current revision gets the changes it missed from the event log, in
    // order; only when the log no longer has them (pruned) does the hub ask for a re-read of the row.
    let resuming = afterRevision !== null && snapshot.revision > afterRevision;
    while (job) {
      if (resuming) {
        resuming = false;
        watch.position(sent, snapshot.revision);
      } else {
        if (job.revision > sent) {
          yield job;
          sent = job.revision;
        }
        if (isTerminal(job)) return;
        watch.position(sent);
      }
      for (;;) {
        const item = await watch.next(signal);
        if (item.kind === 'closed') return;
        if (item.kind === 'resync') break;
        if (item.job.revision <= sent) continue;
        yield item.job;
        sent = item.job.revision;
        if (isTerminal(item.job)) return;
      }
      // The hub could not vouch for a gap-free stream (pruned log, slow reader, lost job): re-read the row.
      job = await jobs.getJob(id);
    }
  } finally {
    watch.close();
  }
}

export function isTerminal(job: Job): boolean {
  return terminalStatuses.includes(job.status);
}

/**
 * A generator that was never started skips its `finally` when the client leaves early (return() on a fresh
 * generator just completes it), which would leak the watch: close it on return() too.
 */
function closingWatchOnReturn<T>(watch: { close: () => void }, stream: AsyncGenerator<T>): AsyncGenerator<T> {
  const finish = stream.return.bind(stream);
  stream.return = (value) => {
    watch.close();
    return finish(value);
  };
  return stream;
}
