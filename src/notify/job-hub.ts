import type { DatabasePool } from 'slonik';
import { JobqlError } from '../jobs/errors.ts';
import { type Job, type JobStatus, terminalStatuses } from '../jobs/job.ts';
import { findJobRevisions, listJobEventsAfter, listJobEventsAt, listJobEventsSince } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';
import type { JobChange, Listener } from './listener.ts';

// In-process fan-out of job changes to subscribers (jobUpdated, jobsUpdated, awaitJob).
//
// The rows are the truth and notifications only hints: a notification makes the hub read the job's events
// (job_events, one row per revision) once for all of its watchers, however many there are; a slow periodic
// re-check of the watched jobs' revisions catches notifications that were lost, and a reconnect of the
// listener triggers that re-check at once. Each watcher holds at most MAX_QUEUE events: a subscriber that
// stops reading is switched to "resync" (it re-reads the row when it reads again) instead of growing memory.

export const MAX_QUEUE = 1000;
const EVENTS_PER_READ = 500;
const MAX_JOBS_QUEUE = 10_000;

export type WatchItem = { kind: 'event'; job: Job } | { kind: 'resync' } | { kind: 'closed' };

export type JobWatch = {
  /**
   * Start queueing events after `revision` (the revision the subscriber has). `catchUpTo`, the job's current
   * revision, reads the log at once, for a subscriber that resumes behind it.
   */
  position: (revision: number, catchUpTo?: number) => void;
  /** The next event, a request to re-read the row, or closed (shutdown). Waits for one. */
  next: (signal?: AbortSignal) => Promise<WatchItem>;
  close: () => void;
};

export type JobsFilter = { tenant: string; statuses: readonly JobStatus[] | null; kind: string | null };

export type JobsWatch = {
  /** The next changed job matching the filter, in the state of that change; or null once the hub closes. */
  next: () => Promise<Job | null>;
  close: () => void;
};

type WatchState = {
  known: number | null;
  queue: Job[];
  resync: boolean;
  dirty: boolean;
  closed: boolean;
  wake: (() => void) | null;
};

type JobsWatchState = {
  filter: JobsFilter;
  pending: Array<{ id: string; revision: number }>;
  overflow: boolean;
  closed: boolean;
  wake: (() => void) | null;
};

// target: the highest revision known to be committed (from a notification, a re-check or a snapshot).
type Entry = { watches: Set<WatchState>; reading: Promise<void> | null; again: boolean; target: number };

export type JobHub = ReturnType<typeof createJobHub>;

export function createJobHub(options: {
  pool: DatabasePool;
  listener: Listener;
  recheckIntervalMs: number;
  maxWatches: number;
  /** One tenant's share of maxWatches, so that one tenant cannot take every slot. */
  maxWatchesPerTenant: number;
}) {
  const { pool, listener } = options;
  const entries = new Map<string, Entry>();
  const jobsWatches = new Set<JobsWatchState>();
  let watchCount = 0;
  // Watches per tenant; a tenant is removed at zero, so the map holds only tenants with open watches.
  const tenantCounts = new Map<string, number>();
  let closed = false;
  let lostAt: number | null = null;

  const wake = (watch: { wake: (() => void) | null }) => {
    const resolve = watch.wake;
    watch.wake = null;
    resolve?.();
  };

  /** Takes a slot for `tenant`; the returned function gives it back (once). */
  function reserve(tenant: string): () => void {
    if (closed) throw new JobqlError('UNAVAILABLE', 'the server is shutting down');
    const held = tenantCounts.get(tenant) ?? 0;
    if (held >= options.maxWatchesPerTenant) {
      throw new JobqlError(
        'LIMIT_EXCEEDED',
        `this tenant holds its maximum of ${options.maxWatchesPerTenant} subscriptions on this server; close some or try again later`,
      );
    }
    if (watchCount >= options.maxWatches) {
      throw new JobqlError('LIMIT_EXCEEDED', `this server holds its maximum of ${options.maxWatches} subscriptions; try again later`);
    }
    watchCount++;
    tenantCounts.set(tenant, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      watchCount--;
      const left = (tenantCounts.get(tenant) ?? 1) - 1;
      if (left > 0) tenantCounts.set(tenant, left);
      else tenantCounts.delete(tenant);
    };
  }

  function deliver(entry: Entry, events: readonly Job[]): void {
    for (const watch of entry.watches) {
      if (watch.known === null || watch.resync) continue;
      for (const job of events) {
        if (job.revision <= watch.known) continue;
        // A revision missing from the log (pruned, or beyond what was read) or a full queue: re-read the row.
        if (job.revision !== watch.known + 1 || watch.queue.length >= MAX_QUEUE) {
          watch.resync = true;
          watch.queue = [];
          break;
        }
        watch.queue.push(job);
        watch.known = job.revision;
      }
      if (watch.queue.length > 0 || watch.resync) wake(watch);
    }
  }

  function fetchEvents(id: string): Promise<void> {
    const entry = entries.get(id);
    if (!entry) return Promise.resolve();
    // One read at a time per job, shared by all of its watchers; a change during the read reads again, and
    // a caller that asks meanwhile waits for that same read cycle to end.
    if (entry.reading) {
      entry.again = true;
      return entry.reading;
    }
    entry.reading = readEvents(id, entry).finally(() => {
      entry.reading = null;
    });
    return entry.reading;
  }

  async function readEvents(id: string, entry: Entry): Promise<void> {
    try {
      do {
        entry.again = false;
        const readers = [...entry.watches].filter((w) => w.known !== null && !w.resync);
        if (readers.length === 0) break;
        // Revisions known committed before this read starts must be in its result, unless pruned.
        const committed = entry.target;
        const events = await listJobEventsAfter(pool, id, Math.min(...readers.map((w) => w.known as number)), EVENTS_PER_READ);
        deliver(entry, events);
        if (events.length === EVENTS_PER_READ) {
          entry.again = true;
        } else {
          // The log ends below a revision known to be committed: its rows were pruned. Re-read the row.
          for (const watch of readers) {
            if (watch.known !== null && !watch.resync && watch.known < committed) {
              watch.resync = true;
              watch.queue = [];
              wake(watch);
            }
          }
        }
      } while (entry.again && !closed);
    } catch (error) {
      logger.warn('could not read job events; the periodic re-check will retry', { jobId: id, err: error });
    }
  }

  function onChange(change: JobChange): void {
    const entry = entries.get(change.id);
    if (entry) {
      entry.target = Math.max(entry.target, change.revision);
      let behind = false;
      for (const watch of entry.watches) {
        if (watch.known === null) watch.dirty = true;
        else if (watch.known < change.revision) behind = true;
      }
      if (behind) void fetchEvents(change.id);
    }
    for (const watch of jobsWatches) offer(watch, change);
  }

  function offer(watch: JobsWatchState, change: { id: string; revision: number; status: string; kind: string; tenant: string }): void {
    const { statuses, kind, tenant } = watch.filter;
    if (change.tenant !== tenant) return;
    if (statuses && !statuses.includes(change.status as JobStatus)) return;
    if (kind !== null && kind !== change.kind) return;
    if (watch.pending.length >= MAX_JOBS_QUEUE) {
      watch.overflow = true;
    } else {
      watch.pending.push({ id: change.id, revision: change.revision });
    }
    wake(watch);
  }

  // The backstop for lost notifications: compare the watched jobs' revisions with what their watchers know.
  async function recheck(): Promise<void> {
    const ids = [...entries.keys()];
    if (ids.length === 0) return;
    const reads: Promise<void>[] = [];
    try {
      for (let i = 0; i < ids.length; i += 1000) {
        const revisions = await findJobRevisions(pool, ids.slice(i, i + 1000));
        const current = new Map(revisions.map((r) => [r.id, r.revision]));
        for (const id of ids.slice(i, i + 1000)) {
          const entry = entries.get(id);
          if (!entry) continue;
          const revision = current.get(id);
          if (revision !== undefined) entry.target = Math.max(entry.target, revision);
          for (const watch of entry.watches) {
            // A job that is gone (deleted by retention): the watcher re-reads the row, finds none, and ends.
            if (revision === undefined) {
              watch.resync = true;
              wake(watch);
            }
          }
          if (revision !== undefined && [...entry.watches].some((w) => w.known !== null && w.known < revision)) reads.push(fetchEvents(id));
        }
      }
    } catch (error) {
      logger.warn('re-check of watched jobs failed', { err: error });
    }
    await Promise.all(reads);
  }

  // After a listener outage, dashboards get the changes they missed from the event log.
  async function replaySince(since: number): Promise<void> {
    if (jobsWatches.size === 0) return;
    try {
      const events = await listJobEventsSince(pool, new Date(since - 1000).toISOString(), MAX_JOBS_QUEUE);
      for (const job of events) for (const watch of jobsWatches) offer(watch, job);
    } catch (error) {
      logger.warn('could not replay job changes after the listener reconnected', { err: error });
    }
  }

  listener.onChange(onChange);
  listener.onLost(() => {
    lostAt ??= Date.now();
  });
  listener.onReconnect(() => {
    const since = lostAt ?? Date.now();
    lostAt = null;
    void recheck();
    void replaySince(since);
  });
  const timer = setInterval(() => void recheck(), options.recheckIntervalMs);

  return {
    activeWatches: () => watchCount,

    /** Events held in memory for subscribers that have not read them yet (bounded by MAX_QUEUE per watch). */
    bufferedEvents: () => {
      let total = 0;
      for (const entry of entries.values()) for (const watch of entry.watches) total += watch.queue.length;
      return total;
    },

    watchJob(id: string, tenant: string): JobWatch {
      const release = reserve(tenant);
      const watch: WatchState = { known: null, queue: [], resync: false, dirty: false, closed: false, wake: null };
      let entry = entries.get(id);
      if (!entry) {
        entry = { watches: new Set(), reading: null, again: false, target: 0 };
        entries.set(id, entry);
      }
      entry.watches.add(watch);
      const close = () => {
        if (watch.closed) return;
        watch.closed = true;
        release();
        const current = entries.get(id);
        current?.watches.delete(watch);
        if (current && current.watches.size === 0) entries.delete(id);
        wake(watch);
      };
      return {
        position: (revision, catchUpTo) => {
          const catchUp = catchUpTo !== undefined;
          if (catchUpTo !== undefined && entry) entry.target = Math.max(entry.target, catchUpTo);
          watch.known = revision;
          watch.resync = false;
          watch.queue = [];
          if (watch.dirty || catchUp) {
            watch.dirty = false;
            void fetchEvents(id);
          }
        },
        next: async (signal) => {
          for (;;) {
            // Queued events first: at shutdown, the final states read by the last re-check still go out.
            const job = watch.queue.shift();
            if (job) return { kind: 'event', job };
            if (watch.closed || closed || signal?.aborted) return { kind: 'closed' };
            if (watch.resync) {
              watch.known = null; // until the subscriber positions again after re-reading
              watch.resync = false;
              return { kind: 'resync' };
            }
            await new Promise<void>((resolve) => {
              watch.wake = resolve;
              signal?.addEventListener('abort', () => resolve(), { once: true });
            });
          }
        },
        close,
      };
    },

    watchJobs(filter: JobsFilter): JobsWatch {
      const release = reserve(filter.tenant);
      const watch: JobsWatchState = { filter, pending: [], overflow: false, closed: false, wake: null };
      jobsWatches.add(watch);
      const ready: Job[] = [];
      return {
        next: async () => {
          for (;;) {
            if (watch.closed || closed) return null;
            if (watch.overflow) {
              throw new JobqlError('LIMIT_EXCEEDED', `this subscriber fell more than ${MAX_JOBS_QUEUE} changes behind; subscribe again`);
            }
            const job = ready.shift();
            if (job) return job;
            if (watch.pending.length > 0) {
              // Each change is sent as the job was at that revision (from the event log), not as it is now.
              ready.push(...(await listJobEventsAt(pool, watch.pending.splice(0, 100))));
              continue;
            }
            await new Promise<void>((resolve) => {
              watch.wake = resolve;
            });
          }
        },
        close: () => {
          if (watch.closed) return;
          watch.closed = true;
          release();
          jobsWatches.delete(watch);
          wake(watch);
        },
      };
    },

    /**
     * Shutdown: one last re-check so that states written just before (jobs interrupted by this stop) reach
     * their subscribers, then every watch ends and open subscriptions complete cleanly (within `drainMs`).
     */
    async close(drainMs = 2000): Promise<void> {
      if (closed) return;
      await recheck();
      closed = true;
      clearInterval(timer);
      for (const entry of entries.values()) for (const watch of entry.watches) wake(watch);
      for (const watch of jobsWatches) wake(watch);
      // Each stream ends (and closes its watch) once it has sent what it had queued; give them that time
      // before the transports are torn down, so the final states are not cut off.
      for (const deadline = Date.now() + drainMs; watchCount > 0 && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

export function isTerminal(job: Job): boolean {
  return terminalStatuses.includes(job.status);
}
