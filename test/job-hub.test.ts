import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { createCreateBatcher } from '../src/jobs/create-batch.ts';
import { createJobService } from '../src/jobs/job-service.ts';
import { demoKinds } from '../src/kinds/demo.ts';
import { createKindRegistry } from '../src/kinds/registry.ts';
import { MAX_QUEUE } from '../src/live/job-watch.ts';
import { createLiveHub, type LiveHub } from '../src/live/live-hub.ts';
import { createLiveService } from '../src/live/live-service.ts';
import { setLogLevel } from '../src/logger.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { type Listener, startListener } from '../src/notify/listener.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { waitFor } from './helpers/wait.ts';

// The hub and the stream behind jobUpdated, against a real PostgreSQL, where a whole server would hide
// what this checks: how much a subscriber that does not read can make the process hold.
let db: TestDatabase;
let pool: DatabasePool;
let listener: Listener;
let hub: LiveHub;

beforeAll(async () => {
  setLogLevel('silent');
  db = await createTestDatabase();
  pool = await createDatabasePool(db.url);
  listener = await startListener(db.url);
  hub = createLiveHub({ pool, listener, recheckIntervalMs: 200, maxWatches: 100, maxWatchesPerTenant: 100 });
});

afterAll(async () => {
  await hub?.close(0);
  await listener?.close();
  await pool?.end();
  await db?.drop();
});

test('a subscriber that stops reading holds at most MAX_QUEUE events, then gets the current state, ending with the final one', async () => {
  const jobs = createJobService(
    pool,
    'default',
    createMetrics(),
    createKindRegistry(demoKinds),
    createCreateBatcher(pool, () => {}),
  );
  const updates = createLiveService(jobs, hub);
  const job = await jobs.createJob({ kind: 'echo', input: {} });
  const stream = await updates.jobUpdated(job.id, null);
  const snapshot = await stream.next();
  expect(snapshot.value).toMatchObject({ id: job.id, revision: 1 });

  // 1,500 visible changes while the subscriber reads nothing (each UPDATE is its own revision and NOTIFY).
  const changes = MAX_QUEUE + 500;
  for (let i = 1; i <= changes; i++) await db.query('UPDATE jobs SET progress = $2 WHERE id = $1', [job.id, i / changes]);
  await db.query("UPDATE jobs SET status = 'completed', result = '{\"done\":true}', finished_at = now() WHERE id = $1", [job.id]);
  const finalRevision = changes + 2;
  await waitFor('the hub to have seen the last change', async () => {
    const [row] = await db.query<{ revision: number }>('SELECT revision FROM jobs WHERE id = $1', [job.id]);
    return row?.revision === finalRevision && hub.bufferedEvents() <= MAX_QUEUE ? true : undefined;
  });
  await new Promise((resolve) => setTimeout(resolve, 500)); // a few re-check rounds
  expect(hub.bufferedEvents()).toBeLessThanOrEqual(MAX_QUEUE);

  // Reading again: revisions only grow, none repeats, and the stream ends on the final state.
  const revisions: number[] = [];
  let last: { status: string; result: unknown } | undefined;
  for await (const event of stream) {
    revisions.push(event.revision);
    last = event;
  }
  for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBeGreaterThan(revisions[i - 1] as number);
  expect(revisions.at(-1)).toBe(finalRevision);
  expect(last).toMatchObject({ status: 'completed', result: { done: true } });
  expect(hub.activeWatches()).toBe(0);
});

test('a subscriber that leaves before reading anything releases its watch', async () => {
  const jobs = createJobService(
    pool,
    'default',
    createMetrics(),
    createKindRegistry(demoKinds),
    createCreateBatcher(pool, () => {}),
  );
  const updates = createLiveService(jobs, hub);
  const job = await jobs.createJob({ kind: 'echo', input: {} });
  const before = hub.activeWatches();
  const stream = await updates.jobUpdated(job.id, null);
  expect(hub.activeWatches()).toBe(before + 1);
  await stream.return(undefined);
  expect(hub.activeWatches()).toBe(before);
});
