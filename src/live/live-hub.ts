import type { DatabasePool } from 'slonik';
import { JobqlError } from '../jobs/errors.ts';
import type { Listener } from '../notify/listener.ts';
import { createJobWatcher, type JobWatch } from './job-watch.ts';
import { createJobsFeed, type JobsFilter, type JobsWatch } from './jobs-feed.ts';

// The process's live status: wires the one listener to the per-job watch (job-watch.ts) and the filtered
// feed (jobs-feed.ts), holds the subscription quota they share, and closes them in order at shutdown.
// A reconnect of the listener re-checks the watched jobs at once and replays the outage to the feeds.

export type LiveHub = ReturnType<typeof createLiveHub>;

export function createLiveHub(options: {
  pool: DatabasePool;
  listener: Listener;
  recheckIntervalMs: number;
  maxWatches: number;
  /** One tenant's share of maxWatches, so that one tenant cannot take every slot. */
  maxWatchesPerTenant: number;
}) {
  const { pool, listener } = options;
  const watcher = createJobWatcher({ pool });
  const feed = createJobsFeed({ pool });
  const quota = subscriptionQuota(options.maxWatches, options.maxWatchesPerTenant);
  let closed = false;
  let lostAt: number | null = null;

  listener.onChange((change) => {
    watcher.onChange(change);
    feed.onChange(change);
  });
  listener.onLost(() => {
    lostAt ??= Date.now();
  });
  listener.onReconnect(() => {
    const since = lostAt ?? Date.now();
    lostAt = null;
    void watcher.recheck();
    void feed.replaySince(since);
  });
  const timer = setInterval(() => void watcher.recheck(), options.recheckIntervalMs);

  const reserve = (tenant: string) => {
    if (closed) throw new JobqlError('UNAVAILABLE', 'the server is shutting down');
    return quota.reserve(tenant);
  };

  return {
    activeWatches: () => quota.held(),
    bufferedEvents: () => watcher.bufferedEvents(),
    watchJob: (id: string, tenant: string): JobWatch => watcher.watch(id, tenant, reserve(tenant)),
    watchJobs: (filter: JobsFilter): JobsWatch => feed.watch(filter, reserve(filter.tenant)),

    /**
     * Shutdown: one last re-check so that states written just before (jobs interrupted by this stop) reach
     * their subscribers, then every watch ends and open subscriptions complete cleanly (within `drainMs`).
     */
    async close(drainMs = 2000): Promise<void> {
      if (closed) return;
      await watcher.recheck();
      closed = true;
      clearInterval(timer);
      watcher.close();
      feed.close();
      // Each stream ends (and closes its watch) once it has sent what it had queued; give them that time
      // before the transports are torn down, so the final states are not cut off.
      for (const deadline = Date.now() + drainMs; quota.held() > 0 && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

/** Subscription slots, per process and per tenant; `reserve` returns the function that gives one back (once). */
function subscriptionQuota(max: number, maxPerTenant: number) {
  let count = 0;
  // Watches per tenant; a tenant is removed at zero, so the map holds only tenants with open watches.
  const perTenant = new Map<string, number>();
  return {
    held: () => count,
    reserve(tenant: string): () => void {
      const held = perTenant.get(tenant) ?? 0;
      if (held >= maxPerTenant) {
        throw new JobqlError(
          'LIMIT_EXCEEDED',
          `this tenant holds its maximum of ${maxPerTenant} subscriptions on this server; close some or try again later`,
        );
      }
      if (count >= max) throw new JobqlError('LIMIT_EXCEEDED', `this server holds its maximum of ${max} subscriptions; try again later`);
      count++;
      perTenant.set(tenant, held + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        count--;
        const left = (perTenant.get(tenant) ?? 1) - 1;
        if (left > 0) perTenant.set(tenant, left);
        else perTenant.delete(tenant);
      };
    },
  };
}
