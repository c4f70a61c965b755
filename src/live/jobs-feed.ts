import type { DatabasePool } from 'slonik';
import { JobqlError } from '../jobs/errors.ts';
import type { Job, JobStatus } from '../jobs/job.ts';
import { listJobEventsAt, listJobEventsSince } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';
import type { JobChange } from '../notify/change-payload.ts';
import { wake } from './job-watch.ts';

// The filtered feed behind jobsUpdated: every change of a tenant's jobs that matches a filter, for dashboards.
// Notifications are queued as (id, revision) pairs and read from the event log when the subscriber pulls, so
// each change is sent as the job was at that revision. A subscriber that falls MAX_JOBS_QUEUE changes behind
// is ended with LIMIT_EXCEEDED rather than held in memory.

export const MAX_JOBS_QUEUE = 10_000;
const EVENTS_PER_READ = 100;

export type JobsFilter = { tenant: string; statuses: readonly JobStatus[] | null; kind: string | null };

export type JobsWatch = {
  /** The next changed job matching the filter, in the state of that change; or null once the feed closes. */
  next: () => Promise<Job | null>;
  close: () => void;
};

type FeedState = {
  filter: JobsFilter;
  pending: Array<{ id: string; revision: number }>;
  overflow: boolean;
  closed: boolean;
  wake: (() => void) | null;
};

type Change = Pick<JobChange, 'id' | 'revision' | 'status' | 'kind' | 'tenant'>;

function offer(state: FeedState, change: Change): void {
  const { statuses, kind, tenant } = state.filter;
  if (change.tenant !== tenant) return;
  if (statuses && !statuses.includes(change.status as JobStatus)) return;
  if (kind !== null && kind !== change.kind) return;
  if (state.pending.length >= MAX_JOBS_QUEUE) state.overflow = true;
  else state.pending.push({ id: change.id, revision: change.revision });
  wake(state);
}

export type JobsFeed = ReturnType<typeof createJobsFeed>;

export function createJobsFeed(options: { pool: DatabasePool }) {
  const { pool } = options;
  const states = new Set<FeedState>();
  let closed = false;

  return {
    onChange(change: Change): void {
      for (const state of states) offer(state, change);
    },

    /** After a listener outage, dashboards get the changes they missed from the event log (per tenant watching). */
    async replaySince(since: number): Promise<void> {
      const tenants = new Set([...states].map((state) => state.filter.tenant));
      for (const tenant of tenants) {
        try {
          const events = await listJobEventsSince(pool, tenant, new Date(since - 1000).toISOString(), MAX_JOBS_QUEUE);
          for (const job of events) for (const state of states) offer(state, job);
        } catch (error) {
          logger.warn('could not replay job changes after the listener reconnected', { err: error });
        }
      }
    },

    watch(filter: JobsFilter, release: () => void): JobsWatch {
      const state: FeedState = { filter, pending: [], overflow: false, closed: false, wake: null };
      states.add(state);
      const ready: Job[] = [];
      return {
        next: async () => {
          for (;;) {
            if (state.closed || closed) return null;
            if (state.overflow) {
              throw new JobqlError('LIMIT_EXCEEDED', `this subscriber fell more than ${MAX_JOBS_QUEUE} changes behind; subscribe again`);
            }
            const job = ready.shift();
            if (job) return job;
            if (state.pending.length > 0) {
              ready.push(...(await listJobEventsAt(pool, filter.tenant, state.pending.splice(0, EVENTS_PER_READ))));
              continue;
            }
            await new Promise<void>((resolve) => {
              state.wake = resolve;
            });
          }
        },
        close: () => {
          if (state.closed) return;
          state.closed = true;
          release();
          states.delete(state);
          wake(state);
        },
      };
    },

    /** Every open feed ends (next answers null). */
    close(): void {
      closed = true;
      for (const state of states) wake(state);
    },
  };
}
