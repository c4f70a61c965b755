import type { DatabasePool } from 'slonik';
import type { Job } from '../jobs/job.ts';
import { findJobRevisions, listJobEventsAfter } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';
import type { JobChange } from '../notify/change-payload.ts';

// The per-job, revisioned, gap-free watch behind jobUpdated and awaitJob.
//
// The rows are the truth and notifications only hints: a change of a watched job makes the watcher read that
// job's events (job_events, one row per revision) once for all of its watches, however many there are; a slow
// periodic re-check of the watched jobs' revisions catches notifications that were lost. Each watch holds at
// most MAX_QUEUE events: a subscriber that stops reading is switched to "resync" (it re-reads the row when it
// reads again) instead of growing memory.
//
// The states, in one place.
//
// A watch (one subscriber):
//   unpositioned  known === null. Attached before the subscriber read its snapshot, or after a resync until it
//                 re-read the row. Changes are not queued; one arriving sets `dirty`, so that `position` reads
//                 the log at once instead of waiting for the next change or re-check.
//   following     known === n: the subscriber has revision n; events n+1, n+2, … are queued in order. An event
//                 that would skip a revision (pruned from the log) or overflow the queue moves it to resync.
//   resync        resync === true: the watcher cannot vouch for a gap-free stream (pruned log, full queue, job
//                 gone). The queue is dropped; `next` answers 'resync' once and the watch is unpositioned again.
//   closed        closed === true, or the whole watcher closed: `next` answers what is queued, then 'closed'.
//
// A job (all watches of one job, one Entry):
//   target        the highest revision known to be committed (from a notification, a re-check or a snapshot).
//                 A read whose log ends below it found pruned rows: its followers are moved to resync.
//   reading       the one read of the log in flight; watches share it.
//   again         a change arrived during that read: read once more when it ends, so that no change is lost.

export const MAX_QUEUE = 1000;
const EVENTS_PER_READ = 500;
const RECHECK_BATCH = 1000;

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

type WatchState = {
  known: number | null;
  queue: Job[];
  resync: boolean;
  dirty: boolean;
  closed: boolean;
  wake: (() => void) | null;
};

type Entry = { id: string; tenant: string; watches: Set<WatchState>; reading: Promise<void> | null; again: boolean; target: number };

export type JobWatcher = ReturnType<typeof createJobWatcher>;

export function wake(watch: { wake: (() => void) | null }): void {
  const resolve = watch.wake;
  watch.wake = null;
  resolve?.();
}

/** Jobs are watched per tenant: every read of the log filters on the tenant of the watch that asked. */
const keyOf = (tenant: string, id: string) => `${tenant}\u0000${id}`;

const following = (watch: WatchState): watch is WatchState & { known: number } => watch.known !== null && !watch.resync;

function toResync(watch: WatchState): void {
  watch.resync = true;
  watch.queue = [];
  wake(watch);
}

/** Queues the events (in revision order) on each following watch; a gap or a full queue moves it to resync. */
function deliver(entry: Entry, events: readonly Job[]): void {
  for (const watch of entry.watches) {
    if (!following(watch)) continue;
    for (const job of events) {
      if (job.revision <= watch.known) continue;
      if (job.revision !== watch.known + 1 || watch.queue.length >= MAX_QUEUE) {
        toResync(watch);
        break;
      }
      watch.queue.push(job);
      watch.known = job.revision;
    }
    if (watch.queue.length > 0) wake(watch);
  }
}

/** One read cycle of a job's log for its following watches; reads again while changes arrive during it. */
async function readEvents(pool: DatabasePool, entry: Entry, watcherClosed: () => boolean): Promise<void> {
  try {
    do {
      entry.again = false;
      const readers = [...entry.watches].filter(following);
      if (readers.length === 0) break;
      // Revisions known committed before this read starts must be in its result, unless pruned.
      const committed = entry.target;
      const after = Math.min(...readers.map((w) => w.known));
      const events = await listJobEventsAfter(pool, entry.tenant, entry.id, after, EVENTS_PER_READ);
      deliver(entry, events);
      if (events.length === EVENTS_PER_READ) {
        entry.again = true;
      } else {
        // The log ends below a revision known to be committed: its rows were pruned. Re-read the row.
        for (const watch of readers) if (following(watch) && watch.known < committed) toResync(watch);
      }
    } while (entry.again && !watcherClosed());
  } catch (error) {
    logger.warn('could not read job events; the periodic re-check will retry', { jobId: entry.id, err: error });
  }
}

/**
 * A re-check's verdict on one job: true when a watch is behind the job's current revision and the log must
 * be read. A job that is gone (deleted by retention): its watches re-read the row, find none, and end.
 */
function isBehind(entry: Entry, revision: number | undefined): boolean {
  if (revision === undefined) {
    for (const watch of entry.watches) {
      watch.resync = true;
      wake(watch);
    }
    return false;
  }
  entry.target = Math.max(entry.target, revision);
  return [...entry.watches].some((w) => w.known !== null && w.known < revision);
}

function groupByTenant(entries: Iterable<Entry>): Map<string, Entry[]> {
  const byTenant = new Map<string, Entry[]>();
  for (const entry of entries) byTenant.set(entry.tenant, [...(byTenant.get(entry.tenant) ?? []), entry]);
  return byTenant;
}

const queued = (entry: Entry) => [...entry.watches].reduce((sum, watch) => sum + watch.queue.length, 0);

export function createJobWatcher(options: { pool: DatabasePool }) {
  const { pool } = options;
  const entries = new Map<string, Entry>();
  let closed = false;

  function fetchEvents(entry: Entry): Promise<void> {
    // One read at a time per job, shared by all of its watches; a change during the read reads again, and
    // a caller that asks meanwhile waits for that same read cycle to end.
    if (entry.reading) {
      entry.again = true;
      return entry.reading;
    }
    entry.reading = readEvents(pool, entry, () => closed).finally(() => {
      entry.reading = null;
    });
    return entry.reading;
  }

  /** A notification: the job is at `change.revision` now. */
  function onChange(change: Pick<JobChange, 'id' | 'tenant' | 'revision'>): void {
    const entry = entries.get(keyOf(change.tenant, change.id));
    if (!entry) return;
    entry.target = Math.max(entry.target, change.revision);
    let behind = false;
    for (const watch of entry.watches) {
      if (watch.known === null) watch.dirty = true;
      else if (watch.known < change.revision) behind = true;
    }
    if (behind) void fetchEvents(entry);
  }

  // The backstop for lost notifications: compare the watched jobs' revisions with what their watches know.
  async function recheck(): Promise<void> {
    const reads: Promise<void>[] = [];
    try {
      for (const [tenant, all] of groupByTenant(entries.values())) {
        for (let i = 0; i < all.length; i += RECHECK_BATCH) {
          const batch = all.slice(i, i + RECHECK_BATCH);
          const revisions = await findJobRevisions(
            pool,
            tenant,
            batch.map((entry) => entry.id),
          );
          const current = new Map(revisions.map((r) => [r.id, r.revision]));
          for (const entry of batch) if (isBehind(entry, current.get(entry.id))) reads.push(fetchEvents(entry));
        }
      }
    } catch (error) {
      logger.warn('re-check of watched jobs failed', { err: error });
    }
    await Promise.all(reads);
  }

  function watch(id: string, tenant: string, release: () => void): JobWatch {
    const key = keyOf(tenant, id);
    let entry = entries.get(key);
    if (!entry) {
      entry = { id, tenant, watches: new Set(), reading: null, again: false, target: 0 };
      entries.set(key, entry);
    }
    const own = entry;
    const state: WatchState = { known: null, queue: [], resync: false, dirty: false, closed: false, wake: null };
    own.watches.add(state);
    return subscriberSide(state, own, {
      read: () => void fetchEvents(own),
      watcherClosed: () => closed,
      detach: () => {
        release();
        own.watches.delete(state);
        if (own.watches.size === 0 && entries.get(key) === own) entries.delete(key);
      },
    });
  }

  return {
    onChange,
    recheck,
    watch,
    /** Events held in memory for subscribers that have not read them yet (bounded by MAX_QUEUE per watch). */
    bufferedEvents: () => [...entries.values()].reduce((sum, entry) => sum + queued(entry), 0),
    /** Every watch answers what it has queued, then 'closed'. */
    close: () => {
      closed = true;
      for (const entry of entries.values()) for (const state of entry.watches) wake(state);
    },
  };
}

/** The subscriber's side of one watch: the transitions it drives (position, next, close). */
function subscriberSide(
  state: WatchState,
  entry: Entry,
  watcher: { read: () => void; watcherClosed: () => boolean; detach: () => void },
): JobWatch {
  return {
    position: (revision, catchUpTo) => {
      if (catchUpTo !== undefined) entry.target = Math.max(entry.target, catchUpTo);
      state.known = revision;
      state.resync = false;
      state.queue = [];
      if (state.dirty || catchUpTo !== undefined) {
        state.dirty = false;
        watcher.read();
      }
    },
    next: async (signal) => {
      for (;;) {
        // Queued events first: at shutdown, the final states read by the last re-check still go out.
        const job = state.queue.shift();
        if (job) return { kind: 'event', job };
        if (state.closed || watcher.watcherClosed() || signal?.aborted) return { kind: 'closed' };
        if (state.resync) {
          state.known = null; // until the subscriber positions again after re-reading
          state.resync = false;
          return { kind: 'resync' };
        }
        await new Promise<void>((resolve) => {
          state.wake = resolve;
          signal?.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    },
    close: () => {
      if (state.closed) return;
      state.closed = true;
      watcher.detach();
      wake(state);
    },
  };
}
