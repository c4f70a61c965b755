import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { z } from 'zod';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { defineKind, type KindSchedule } from '../src/kinds/kind.ts';
import { createKindRegistry } from '../src/kinds/registry.ts';
import type { CompiledSchedule } from '../src/kinds/schedule.ts';
import { setLogLevel } from '../src/logger.ts';
import { type CronScheduler, startCronScheduler } from '../src/maintenance/cron-scheduler.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { waitFor } from './helpers/wait.ts';

// The cron scheduler driven directly against a real database: which ticks it creates after a downtime, with
// and without catchUp, that the tick's job is an ordinary job with the kind's defaults, that two schedulers
// on one database create each tick once, pruning, and stop.
let db: TestDatabase;
const pools: DatabasePool[] = [];
const running: CronScheduler[] = [];

beforeAll(async () => {
  setLogLevel((process.env.LOG_LEVEL as 'info' | undefined) ?? 'silent');
  db = await createTestDatabase();
});

afterEach(async () => {
  for (const scheduler of running.splice(0)) await scheduler.stop();
  await db.query('DELETE FROM cron_ticks');
  await db.query('DELETE FROM jobs');
});

afterAll(async () => {
  for (const pool of pools) await pool.end();
  await db?.drop();
});

async function newPool(): Promise<DatabasePool> {
  const pool = await createDatabasePool(db.url);
  pools.push(pool);
  return pool;
}

function scheduleOf(entry: KindSchedule, policies: { maxAttempts?: number; timeoutMs?: number } = {}): CompiledSchedule {
  const kind = defineKind({
    name: 'report',
    input: z.strictObject({ region: z.string() }),
    handler: async () => null,
    schedule: [entry],
    ...policies,
  });
  return createKindRegistry([kind]).schedules()[0] as CompiledSchedule;
}

async function start(schedule: CompiledSchedule, pool?: DatabasePool): Promise<CronScheduler> {
  const scheduler = startCronScheduler({ pool: pool ?? (await newPool()), schedules: [schedule], metrics: createMetrics() });
  running.push(scheduler);
  return scheduler;
}

type Tick = { tick: string; job_id: string };
/** The recorded ticks after `afterIso`, oldest first, as ISO text. */
const ticksAfter = (afterIso: string) =>
  db.query<Tick>(
    `SELECT to_char(tick_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS tick, job_id FROM cron_ticks
     WHERE tick_at > $1::timestamptz ORDER BY tick_at`,
    [afterIso],
  );
const dbNow = async (expression = 'now()') =>
  (await db.query<{ at: string }>(`SELECT to_char(${expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at`))[0]
    ?.at as string;
const minute = 60_000;
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
/** A past last tick, as if every process had been down since then. */
async function recordLastTick(schedule: CompiledSchedule, minutesAgo: number): Promise<number> {
  const [row] = await db.query<{ at: string }>(
    `INSERT INTO cron_ticks (kind, schedule_key, tick_at, job_id)
     VALUES ($1, $2, date_trunc('minute', now()) - make_interval(mins => $3), gen_random_uuid())
     RETURNING to_json(tick_at) #>> '{}' AS at`,
    [schedule.kind, schedule.key, minutesAgo],
  );
  return new Date(row?.at as string).getTime();
}

test("each tick creates one job: an ordinary queued job due at its tick, with the kind's defaults and the schedule's input", async () => {
  const schedule = scheduleOf({ cron: '* * * * * *', input: { region: 'eu' } }, { maxAttempts: 3, timeoutMs: 5000 });
  const before = await dbNow();
  await start(schedule);
  const ticks = await waitFor('two ticks', async () => {
    const rows = await ticksAfter(before);
    return rows.length >= 2 ? rows : undefined;
  });
  const jobs = await db.query<{
    id: string;
    kind: string;
    tenant: string;
    status: string;
    input: unknown;
    max_attempts: number;
    timeout_ms: number;
    tick: string;
  }>(
    `SELECT id, kind, tenant, status, input, max_attempts, timeout_ms,
            to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS tick
     FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY run_at`,
    [ticks.slice(0, 2).map((tick) => tick.job_id)],
  );
  expect(jobs.map(({ id, ...job }) => job)).toEqual(
    ticks.slice(0, 2).map((tick) => ({
      kind: 'report',
      tenant: 'default',
      status: 'queued',
      input: { region: 'eu' },
      max_attempts: 3,
      timeout_ms: 5000,
      tick: tick.tick,
    })),
  );
});

test('two schedulers on one database: every tick once, one job each, no tick left out', async () => {
  const schedule = scheduleOf({ cron: '* * * * * *', input: { region: 'eu' } });
  const before = await dbNow();
  await Promise.all([start(schedule), start(schedule)]);
  await waitFor('four ticks', async () => ((await ticksAfter(before)).length >= 4 ? true : undefined));
  await Promise.all(running.splice(0).map((scheduler) => scheduler.stop()));
  const ticks = await ticksAfter(before);
  const jobs = await db.query<{ tick: string }>(
    `SELECT to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS tick FROM jobs WHERE kind = 'report' ORDER BY run_at`,
  );
  expect(jobs.map((job) => job.tick)).toEqual(ticks.map((tick) => tick.tick));
  // Consecutive seconds: none twice, none missing.
  const seconds = ticks.map((tick) => new Date(tick.tick).getTime() / 1000);
  expect(seconds).toEqual(seconds.map((_, index) => (seconds[0] as number) + index));
});

test('by default, ticks missed while no process ran are skipped: the first job is of a tick after the start', async () => {
  const schedule = scheduleOf({ cron: '* * * * *', input: { region: 'eu' } });
  const lastMs = await recordLastTick(schedule, 10);
  const started = await dbNow();
  const scheduler = await start(schedule);
  expect(await scheduler.runOnce()).toBe(0);
  // Should a minute begin meanwhile, its tick is created (it fell after the start); none before the start is.
  const ticks = await ticksAfter(iso(lastMs));
  for (const tick of ticks) expect(new Date(tick.tick).getTime()).toBeGreaterThanOrEqual(new Date(started).getTime());
  expect(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM jobs'))[0]?.n)).toBe(ticks.length);
});

test('catchUp: true creates every missed tick after the last one, oldest first, up to the latest', async () => {
  const schedule = scheduleOf({ cron: '* * * * *', input: { region: 'eu' }, catchUp: true });
  const lastMs = await recordLastTick(schedule, 10);
  const before = new Date(await dbNow("date_trunc('minute', now())")).getTime();
  const scheduler = await start(schedule);
  await scheduler.runOnce();
  const after = new Date(await dbNow("date_trunc('minute', now())")).getTime();
  const ticks = (await ticksAfter(iso(lastMs))).map((tick) => new Date(tick.tick).getTime());
  // Every minute after the last tick up to now's minute (10, or 11 should a minute begin during the test).
  expect(ticks[0]).toBe(lastMs + minute);
  expect(ticks).toEqual(ticks.map((_, index) => lastMs + (index + 1) * minute));
  expect(ticks.at(-1)).toBeGreaterThanOrEqual(before);
  expect(ticks.at(-1)).toBeLessThanOrEqual(after);
  expect(Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM jobs WHERE kind = 'report'"))[0]?.n)).toBe(ticks.length);
});

test('catchUp is bounded: after three hours down, only the most recent 100 ticks are created', async () => {
  const schedule = scheduleOf({ cron: '* * * * *', input: { region: 'eu' }, catchUp: true });
  const lastMs = await recordLastTick(schedule, 180);
  const scheduler = await start(schedule);
  await scheduler.runOnce();
  const after = new Date(await dbNow("date_trunc('minute', now())")).getTime();
  const ticks = (await ticksAfter(iso(lastMs))).map((tick) => new Date(tick.tick).getTime());
  expect(ticks).toHaveLength(100);
  const last = ticks.at(-1) as number;
  expect(ticks).toEqual(ticks.map((_, index) => last - (99 - index) * minute));
  expect(last).toBeGreaterThanOrEqual(after - minute);
  expect(ticks[0]).toBeGreaterThan(lastMs + 60 * minute);
});

test('pruning deletes tick rows past their retention (a day) but keeps the newest of each schedule', async () => {
  const schedule = scheduleOf({ cron: '0 0 1 1 *', input: { region: 'eu' } });
  await db.query(
    `INSERT INTO cron_ticks (kind, schedule_key, tick_at, job_id)
     SELECT 'report', key, now() - make_interval(days => d), gen_random_uuid()
     FROM unnest(ARRAY[$1, 'other']) AS key, generate_series(8, 10) AS d`,
    [schedule.key],
  );
  await db.query(
    `INSERT INTO cron_ticks (kind, schedule_key, tick_at, job_id) VALUES ('report', $1, now() - interval '1 hour', gen_random_uuid())`,
    [schedule.key],
  );
  const scheduler = await start(schedule);
  expect(await scheduler.pruneOnce()).toBe(5);
  const left = await db.query<{ schedule_key: string; hours: number }>(
    `SELECT schedule_key, round(extract(epoch FROM now() - tick_at) / 3600)::int AS hours FROM cron_ticks ORDER BY schedule_key`,
  );
  expect(left).toEqual([
    { schedule_key: schedule.key, hours: 1 },
    { schedule_key: 'other', hours: 8 * 24 },
  ]);
});

test('stop() clears the timer and waits for a pass under way: no tick is created after it', async () => {
  const schedule = scheduleOf({ cron: '* * * * * *', input: { region: 'eu' } });
  const before = await dbNow();
  const scheduler = await start(schedule);
  await waitFor('a tick', async () => ((await ticksAfter(before)).length >= 1 ? true : undefined));
  await scheduler.stop();
  const count = (await ticksAfter(before)).length;
  await sleep(2500);
  expect((await ticksAfter(before)).length).toBe(count);
});
