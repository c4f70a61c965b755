import { performance } from 'node:perf_hooks';
import type { DatabasePool } from 'slonik';
import { findLastCronTicks, insertScheduledJobs, pruneCronTicks } from '../jobs/job-queries.ts';
import { type CompiledSchedule, dueTicks, MAX_TICKS_PER_PASS } from '../kinds/schedule.ts';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { startPeriodicDeletion } from './periodic-deletion.ts';

/** The longest sleep between passes, so that a timer that drifted, or ticks another process recorded, are seen again. */
const MAX_SLEEP_MS = 60_000;
/** A timer may fire a little early: wake this much after the tick, so that the database's clock has passed it. */
const AFTER_TICK_MS = 5;
/**
 * Tick rows are kept a day (the newest of each schedule always): only the newest decides anything (the insert
 * never goes back before it), the rest is history for operators, and an every-second schedule writes 86,400 a day.
 */
const TICK_RETENTION_MS = 24 * 3_600_000;

export type CronScheduler = {
  /** One pass now: creates the jobs of the ticks that are due; resolves to how many this process created. */
  runOnce: () => Promise<number>;
  /** Clears the timers and waits for a pass under way. */
  stop: () => Promise<void>;
  /** One pruning pass now (tick rows past their retention); resolves to how many were deleted. */
  pruneOnce: () => Promise<number>;
};

export type CronSchedulerOptions = {
  pool: DatabasePool;
  schedules: readonly CompiledSchedule[];
  metrics: Pick<Metrics, 'jobsCreated'>;
  maxSleepMs?: number;
  tickRetentionMs?: number;
};

/**
 * Creates the jobs of kinds' schedules, in every process that knows scheduled kinds. Each pass reads the
 * database's clock and each schedule's last recorded tick, and inserts the ticks due since then; the tick's
 * primary key makes each create exactly one job however many processes do this (see insertScheduledJobs).
 * Between passes it sleeps until the next tick of any schedule (at most a minute).
 *
 * What is due, for a schedule whose last recorded tick is L, at the database's time `now`:
 * - by default, the ticks after L and after this process's first pass, up to now: a tick that fell while
 *   every process was down is skipped, while a pass that ran late (a busy or frozen process) misses nothing;
 * - with `catchUp: true`, every tick after L up to now, the most recent MAX_TICKS_PER_PASS (100) at most.
 * A schedule with no recorded tick starts with its first tick after this process's first pass.
 */
export function startCronScheduler(options: CronSchedulerOptions): CronScheduler {
  const { pool, schedules } = options;
  const maxSleepMs = options.maxSleepMs ?? MAX_SLEEP_MS;
  // The database's time at this process's first pass: ticks before it were missed by every process, or
  // created by another one.
  let startedAtMs: number | null = null;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let failures = 0;

  async function pass(): Promise<{ created: number; sleepMs: number }> {
    const began = performance.now();
    const { nowMs, last } = await findLastCronTicks(pool, schedules);
    startedAtMs ??= nowMs;
    let created = 0;
    const lastTicks = new Map(last.map((row) => [refOf(row), row.lastTickMs]));
    for (const schedule of schedules) {
      created += await createDueJobs(schedule, lastTicks.get(refOf(schedule)) ?? null, nowMs, startedAtMs);
    }
    const next = Math.min(...schedules.map((s) => s.pattern.nextRun(new Date(nowMs))?.getTime() ?? Number.POSITIVE_INFINITY));
    // Measured on the database's clock from the pass's start, less what the pass itself took.
    const sleepMs = Math.min(maxSleepMs, Math.max(0, next - nowMs - (performance.now() - began)) + AFTER_TICK_MS);
    return { created, sleepMs };
  }

  async function createDueJobs(schedule: CompiledSchedule, lastTickMs: number | null, nowMs: number, firstPassMs: number) {
    const sinceMs = schedule.catchUp && lastTickMs !== null ? lastTickMs : Math.max(lastTickMs ?? firstPassMs, firstPassMs);
    const { ticks, skipped } = dueTicks(schedule.pattern, sinceMs, nowMs);
    if (skipped) {
      logger.warn('more ticks are due than one pass creates: only the most recent are created', {
        kind: schedule.kind,
        cron: schedule.cron,
        created: MAX_TICKS_PER_PASS,
      });
    }
    if (ticks.length === 0) return 0;
    const jobs = await insertScheduledJobs(
      pool,
      schedule,
      ticks.map((tick) => tick.toISOString()),
    );
    if (jobs.length > 0) {
      options.metrics.jobsCreated(jobs.map((job) => job.kind));
      logger.info('scheduled jobs created', {
        kind: schedule.kind,
        cron: schedule.cron,
        count: jobs.length,
        jobIds: jobs.slice(0, 50).map((job) => job.id),
        ticks: jobs.slice(0, 50).map((job) => job.runAt),
      });
    }
    return jobs.length;
  }

  const runOnce = async () => (await pass()).created;

  // One pass at a time from the timer; the next is armed only after it, so passes never overlap here.
  function loop(): void {
    timer = null;
    inFlight = pass().then(
      ({ sleepMs }) => {
        failures = 0;
        return sleepMs;
      },
      (error: unknown) => {
        failures += 1;
        logger.warn('could not create the jobs of schedules; will retry', { err: error });
        return Math.min(30_000, 1000 * 2 ** (failures - 1));
      },
    );
    void inFlight.then((sleepMs) => {
      if (!stopped) timer = setTimeout(loop, sleepMs as number);
    });
  }

  const pruning = startPeriodicDeletion({
    what: 'cron ticks',
    retentionMs: options.tickRetentionMs ?? TICK_RETENTION_MS,
    batch: 1000,
    intervalMs: 10 * 60_000,
    runAtStart: false,
    deleteBatch: (retentionMs, batch) => pruneCronTicks(pool, retentionMs, batch),
  });
  loop();
  return {
    runOnce,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      pruning.stop();
      // A pass under way finishes (its statements need the pool, which stops after this) and arms no timer.
      await inFlight;
    },
    pruneOnce: pruning.runOnce,
  };
}

const refOf = (schedule: { kind: string; key: string }) => `${schedule.kind}\u0000${schedule.key}`;
