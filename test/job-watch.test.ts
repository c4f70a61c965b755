import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { createCreateBatcher } from '../src/jobs/create-batch.ts';
import type { Job } from '../src/jobs/job.ts';
import { findJobRevisions, listJobEventsAfter, listJobEventsAt, listJobEventsSince } from '../src/jobs/job-queries.ts';
import { createJobService } from '../src/jobs/job-service.ts';
import { demoKinds } from '../src/kinds/demo.ts';
import { createKindRegistry } from '../src/kinds/registry.ts';
import { createJobWatcher, type JobWatch, type JobWatcher, MAX_QUEUE, type WatchItem } from '../src/live/job-watch.ts';
import { createLiveHub, type LiveHub } from '../src/live/live-hub.ts';
import { createLiveService } from '../src/live/live-service.ts';
import { setLogLevel } from '../src/logger.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { type Listener, startListener } from '../src/notify/listener.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

// The per-job watch machine (live/job-watch.ts) driven directly against a real PostgreSQL: notifications are
// handed to it by the test (onChange), or withheld, so that each state change it documents can be forced.

const TENANT = 'default';
let db: TestDatabase;
let pool: DatabasePool;
let watcher: JobWatcher;
let released = 0;

beforeAll(async () => {
  setLogLevel('silent');
  db = await createTestDatabase();
  pool = await createDatabasePool(db.url);
  watcher = createJobWatcher({ pool });
});

afterAll(async () => {
  watcher?.close();
  await pool?.end();
  await db?.drop();
});

const service = () =>
  createJobService(
    pool,
    TENANT,
    createMetrics(),
    createKindRegistry(demoKinds),
    createCreateBatcher(pool, () => {}),
  );

async function newJob(): Promise<Job> {
  return service().createJob({ kind: 'echo', input: {} });
}

/** The progress that the change to `revision` wrote (bump): each state of a job is told apart by it. */
const progressAt = (revision: number) => (revision - 1) / 1_000_000;

/** `count` visible changes of the job (each a revision, an event row and a NOTIFY nobody here listens to). */
async function bump(id: string, count: number): Promise<number> {
  await db.query(
    `DO $$ BEGIN FOR i IN 1..${count} LOOP UPDATE jobs SET progress = revision::float8 / 1000000 WHERE id = '${id}'; END LOOP; END $$`,
  );
  const [row] = await db.query<{ revision: number }>('SELECT revision FROM jobs WHERE id = $1', [id]);
  return row?.revision as number;
}

function watch(id: string): JobWatch {
  return watcher.watch(id, TENANT, () => released++);
}

/** The next item, or 'closed' when none comes within `ms` (the watch has nothing more to say on its own). */
function nextWithin(w: JobWatch, ms = 5000): Promise<WatchItem> {
  return w.next(AbortSignal.timeout(ms));
}

async function revisionsOf(w: JobWatch, count: number): Promise<number[]> {
  const revisions: number[] = [];
  for (let i = 0; i < count; i++) {
    const item = await nextWithin(w);
    revisions.push(item.kind === 'event' ? item.job.revision : -1);
  }
  return revisions;
}

describe('gaps', () => {
  test('a notification that skips revisions still delivers every missed revision from the log, in order, as it was', async () => {
    const job = await newJob();
    const w = watch(job.id);
    w.position(job.revision);
    const last = await bump(job.id, 3);
    // Only the last of the three notifications arrives.
    watcher.onChange({ id: job.id, tenant: TENANT, revision: last });
    const items = [await nextWithin(w), await nextWithin(w), await nextWithin(w)];
    expect(items.map((item) => (item.kind === 'event' ? [item.job.revision, item.job.progress] : item.kind))).toEqual([
      [2, progressAt(2)],
      [3, progressAt(3)],
      [4, progressAt(4)],
    ]);
    w.close();
  });

  test('with every notification lost, the re-check delivers the missed revisions', async () => {
    const job = await newJob();
    const w = watch(job.id);
    w.position(job.revision);
    await bump(job.id, 2);
    await watcher.recheck();
    expect(await revisionsOf(w, 2)).toEqual([2, 3]);
    w.close();
  });

  test('a change that arrives before the subscriber positions is read as soon as it does', async () => {
    const job = await newJob();
    const w = watch(job.id);
    const last = await bump(job.id, 1);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: last }); // unpositioned: only marks it dirty
    w.position(job.revision);
    expect(await revisionsOf(w, 1)).toEqual([2]);
    w.close();
  });
});

describe('resync after a pruned log', () => {
  test('a revision missing from the log moves the watch to resync instead of skipping it', async () => {
    const job = await newJob();
    const w = watch(job.id);
    w.position(job.revision);
    const last = await bump(job.id, 3);
    await db.query('DELETE FROM job_events WHERE job_id = $1 AND revision IN (2, 3)', [job.id]);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: last });
    expect((await nextWithin(w)).kind).toBe('resync');
    w.close();
  });

  test('a log that ends below a revision known to be committed moves the watch to resync', async () => {
    const job = await newJob();
    const w = watch(job.id);
    w.position(job.revision);
    const last = await bump(job.id, 2);
    await db.query('DELETE FROM job_events WHERE job_id = $1 AND revision > 1', [job.id]);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: last });
    expect((await nextWithin(w)).kind).toBe('resync');
    // After re-reading the row the subscriber positions again, and later changes flow.
    w.position(last);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: await bump(job.id, 1) });
    expect(await revisionsOf(w, 1)).toEqual([last + 1]);
    w.close();
  });

  test('a job that is gone (retention) moves its watch to resync', async () => {
    const job = await newJob();
    const w = watch(job.id);
    w.position(job.revision);
    await db.query('DELETE FROM jobs WHERE id = $1', [job.id]);
    await watcher.recheck();
    expect((await nextWithin(w)).kind).toBe('resync');
    w.close();
  });
});

describe('a read requested during a read', () => {
  test('a change committed while the log is being read is read once more, not lost', async () => {
    // A real pool whose first event read is held after the database answered, until the test lets it go:
    // the second change is then committed after that read's snapshot, while the read is still in flight.
    let answered: () => void = () => {};
    const firstReadAnswered = new Promise<void>((resolve) => {
      answered = resolve;
    });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reads = 0;
    const gated = new Proxy(pool, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop !== 'any') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          const rows = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (++reads === 1) {
            answered();
            await gate;
          }
          return rows;
        };
      },
    });
    const own = createJobWatcher({ pool: gated });
    const job = await newJob();
    const w = own.watch(job.id, TENANT, () => {});
    w.position(job.revision);
    own.onChange({ id: job.id, tenant: TENANT, revision: await bump(job.id, 1) });
    await firstReadAnswered;
    own.onChange({ id: job.id, tenant: TENANT, revision: await bump(job.id, 1) });
    release();
    // No re-check runs here: only the read asked for during the first one can bring revision 3.
    expect(await revisionsOf(w, 2)).toEqual([2, 3]);
    expect(reads).toBe(2);
    w.close();
    own.close();
  });
});

describe('a slow consumer', () => {
  test('holds at most MAX_QUEUE events; one more drops them for a resync; positioned at the current state it ends on the final one', async () => {
    const job = await newJob();
    const w = watch(job.id);
    w.position(job.revision);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: await bump(job.id, MAX_QUEUE) });
    await watcher.recheck(); // waits for the read cycle that the notification started
    expect(watcher.bufferedEvents()).toBe(MAX_QUEUE);
    // One change more than the queue holds: the watch cannot vouch for a gap-free stream and lets go of it.
    const last = await bump(job.id, 1);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: last });
    await watcher.recheck();
    expect(watcher.bufferedEvents()).toBe(0);
    expect((await nextWithin(w)).kind).toBe('resync');
    // The subscriber re-reads the row (at `last`) and positions there; the final state follows.
    w.position(last);
    await db.query("UPDATE jobs SET status = 'completed', result = '{}', finished_at = now() WHERE id = $1", [job.id]);
    watcher.onChange({ id: job.id, tenant: TENANT, revision: last + 1 });
    const final = await nextWithin(w);
    expect(final.kind === 'event' && [final.job.revision, final.job.status]).toEqual([last + 1, 'completed']);
    w.close();
  });

  test('closing a watch gives its slot back once', async () => {
    const job = await newJob();
    const before = released;
    const w = watch(job.id);
    w.close();
    w.close();
    expect(released).toBe(before + 1);
    expect((await w.next()).kind).toBe('closed');
  });
});

describe('through the live service', () => {
  let listener: Listener;
  let hub: LiveHub;

  beforeAll(async () => {
    listener = await startListener(db.url);
    hub = createLiveHub({ pool, listener, recheckIntervalMs: 200, maxWatches: 100, maxWatchesPerTenant: 100 });
  });

  afterAll(async () => {
    await hub?.close(0);
    await listener?.close();
  });

  test('a subscriber resuming behind a pruned log gets the current state, then the final one', async () => {
    const jobs = service();
    const job = await newJob();
    const current = await bump(job.id, 3);
    await db.query('DELETE FROM job_events WHERE job_id = $1 AND revision > 1', [job.id]);
    const stream = await createLiveService(jobs, hub).jobUpdated(job.id, job.revision);
    const first = await stream.next();
    expect(first.value).toMatchObject({ id: job.id, revision: current, progress: progressAt(current) });
    await db.query("UPDATE jobs SET status = 'completed', result = '{}', finished_at = now() WHERE id = $1", [job.id]);
    const rest: Job[] = [];
    for await (const event of stream) rest.push(event);
    expect(rest.map((event) => [event.revision, event.status])).toEqual([[current + 1, 'completed']]);
  });

  test("one tenant's subscriptions are refused past its quota while another tenant's are taken", async () => {
    const small = createLiveHub({ pool, listener, recheckIntervalMs: 60_000, maxWatches: 3, maxWatchesPerTenant: 2 });
    try {
      const job = await newJob();
      const a = [small.watchJob(job.id, 'a'), small.watchJobs({ tenant: 'a', statuses: null, kind: null })];
      expect(() => small.watchJob(job.id, 'a')).toThrow(/this tenant holds its maximum of 2/);
      const b = small.watchJob(job.id, 'b');
      expect(() => small.watchJob(job.id, 'c')).toThrow(/this server holds its maximum of 3/);
      a[0]?.close();
      expect(small.activeWatches()).toBe(2);
      const again = small.watchJob(job.id, 'a');
      for (const w of [...a, b, again]) w?.close();
      expect(small.activeWatches()).toBe(0);
    } finally {
      await small.close(0);
    }
  });
});

describe('the event-log queries filter on the tenant', () => {
  test("another tenant's events and revisions are not found", async () => {
    const job = await newJob();
    await bump(job.id, 1);
    const since = new Date(Date.now() - 60_000).toISOString();
    expect((await listJobEventsAfter(pool, TENANT, job.id, 0, 10)).map((e) => e.revision)).toEqual([1, 2]);
    expect(await listJobEventsAfter(pool, 'other', job.id, 0, 10)).toEqual([]);
    expect((await listJobEventsAt(pool, TENANT, [{ id: job.id, revision: 2 }])).map((e) => e.revision)).toEqual([2]);
    expect(await listJobEventsAt(pool, 'other', [{ id: job.id, revision: 2 }])).toEqual([]);
    expect((await listJobEventsSince(pool, TENANT, since, 100_000)).some((e) => e.id === job.id)).toBe(true);
    expect((await listJobEventsSince(pool, 'other', since, 100_000)).some((e) => e.id === job.id)).toBe(false);
    expect(await findJobRevisions(pool, TENANT, [job.id])).toEqual([{ id: job.id, revision: 2 }]);
    expect(await findJobRevisions(pool, 'other', [job.id])).toEqual([]);
  });

  test("a watch under another tenant's name never sees the job's events", async () => {
    const job = await newJob();
    const w = watcher.watch(job.id, 'other', () => {});
    w.position(0);
    // A notification of the real tenant does not reach it; one faked under its name finds no rows.
    watcher.onChange({ id: job.id, tenant: TENANT, revision: await bump(job.id, 1) });
    watcher.onChange({ id: job.id, tenant: 'other', revision: 2 });
    // Its log read finds nothing below the revision it was told of: it re-reads the row (and finds none).
    expect((await nextWithin(w)).kind).toBe('resync');
    w.close();
  });
});
