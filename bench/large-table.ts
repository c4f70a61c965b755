// The statements that must stay cheap however much history the table holds: the metrics gauges (every
// scrape), retention and event pruning (every minute, every process) and a rare status-and-kind list. Seeds a
// large table with generate_series (finished jobs of four kinds over the last day, FAILED and CANCELLED ones
// all of kind echo so that FAILED sleep jobs are a rare combination; queued jobs; one recent event per job),
// then times the real statements from job-queries.ts through a slonik pool like the server's.
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { createDatabasePool } from '../src/db/pool.ts';
import {
  countFinishedJobsPerMinute,
  countJobsByKindAndStatus,
  countQueueChangesPerMinute,
  countUnfinishedJobs,
  deleteFinishedJobs,
  listJobHistory,
  listJobs,
  pruneJobEvents,
} from '../src/jobs/job-queries.ts';
import { percentile } from './http-load.ts';

const ROUNDS = 20;

export type LargeTableRow = { figure: string; parameters: string; result: string };

export async function measureLargeTable(options: {
  db: pg.Client;
  databaseUrl: string;
  finished: number;
  queued: number;
  log: (line: string) => void;
}): Promise<LargeTableRow[]> {
  const { db, finished, queued, log } = options;
  await seedLargeTable({ db, finished, queued, log });

  const pool = await createDatabasePool(options.databaseUrl, 2);
  const someJob = (await db.query<{ id: string }>('SELECT id FROM jobs LIMIT 1')).rows[0]?.id as string;
  const statements: Array<[string, () => Promise<unknown>]> = [
    ['countUnfinishedJobs (metrics gauges)', () => countUnfinishedJobs(pool, 10_000)],
    ['deleteFinishedJobs (retention 30 d, batch 500, none due)', () => deleteFinishedJobs(pool, 30 * 24 * 3_600_000, 500)],
    ['pruneJobEvents (1 h, batch 1000, none due)', () => pruneJobEvents(pool, 3_600_000, 1000)],
    [
      'listJobs status FAILED, kind sleep (none)',
      () => listJobs(pool, { tenant: 'default', statuses: ['failed'], kind: 'sleep', after: null, limit: 20 }),
    ],
    [
      'listJobs status FAILED or CANCELLED, kind sleep (none)',
      () => listJobs(pool, { tenant: 'default', statuses: ['failed', 'cancelled'], kind: 'sleep', after: null, limit: 20 }),
    ],
    [
      'listJobs status FAILED, kind echo (common)',
      () => listJobs(pool, { tenant: 'default', statuses: ['failed'], kind: 'echo', after: null, limit: 20 }),
    ],
    // A dashboard's numbers: what they read grows with the window's finishes, not with the table.
    ['countJobsByKindAndStatus (jobStats, finished in the last hour)', () => countJobsByKindAndStatus(pool, 'default', 60)],
    ['countJobsByKindAndStatus (jobStats, last 24 h: the whole table here)', () => countJobsByKindAndStatus(pool, 'default', 1440)],
    ['countFinishedJobsPerMinute (jobThroughput, 60 minutes)', () => countFinishedJobsPerMinute(pool, 'default', 60)],
    ['countQueueChangesPerMinute (jobThroughput, 60 minutes of events)', () => countQueueChangesPerMinute(pool, 'default', 60)],
    ['listJobHistory (Job.history, first 50)', () => listJobHistory(pool, 'default', someJob, 0, 50)],
  ];
  const rows: LargeTableRow[] = [];
  try {
    for (const [name, run] of statements) {
      const times = await timeRuns(run, ROUNDS);
      const result = `p50 ${percentile(times, 0.5).toFixed(2)} ms, max ${(times.at(-1) ?? 0).toFixed(2)} ms`;
      log(`   ${name.padEnd(58)} ${result}`);
      rows.push({
        figure: name,
        parameters: `${finished.toLocaleString('en-US')} finished + ${queued.toLocaleString('en-US')} queued jobs, ${ROUNDS} runs`,
        result,
      });
    }
  } finally {
    await pool.end();
  }
  return rows;
}

/**
 * Fills `jobs` (emptied first) with `finished` finished jobs over the last day and `queued` queued jobs of kind
 * sleep, and `job_events` with one recent event per job. The queued jobs are due now unless `queuedFrom` says
 * from when (an interval after now(), e.g. '1 hour'): then they fall due one after another over the next day,
 * as scheduled jobs and retries waiting out their backoff do.
 */
export async function seedLargeTable(options: {
  db: pg.Client;
  finished: number;
  queued: number;
  queuedFrom?: string;
  log: (line: string) => void;
}): Promise<void> {
  const { db, finished, queued, log } = options;
  const seedStarted = performance.now();
  // Triggers off while seeding: the events are written below, and nothing needs the notifications.
  await db.query('TRUNCATE jobs CASCADE');
  await db.query('SET session_replication_role = replica');
  await db.query(
    `INSERT INTO jobs (id, tenant, kind, status, input, error, error_code, attempt, worker_id, created_at, updated_at,
                       started_at, finished_at, run_at)
     SELECT gen_random_uuid(), 'default', kind, status, '{}', CASE WHEN status = 'failed' THEN 'x' END,
            CASE WHEN status = 'failed' THEN 'JOB_FAILED' END, 1, 1, t, t, t, t + interval '1 second', t
     FROM generate_series(1, $1::int) n,
       LATERAL (SELECT now() - interval '1 day' + n * (interval '1 day' / $1::int) AS t,
                       (ARRAY['echo', 'sleep', 'fail', 'flaky'])[1 + n % 4] AS kind) k,
       LATERAL (SELECT CASE WHEN kind = 'echo' AND n % 8 = 0 THEN 'failed'
                            WHEN kind = 'echo' AND n % 12 = 0 THEN 'cancelled' ELSE 'completed' END AS status) s`,
    [finished],
  );
  await db.query(
    `INSERT INTO jobs (id, kind, input, run_at)
     SELECT gen_random_uuid(), 'sleep', '{"ms": 1}',
            CASE WHEN $2::interval IS NULL THEN clock_timestamp() ELSE now() + $2::interval + n * (interval '1 day' / $1::int) END
     FROM generate_series(1, $1::int) n`,
    [queued, options.queuedFrom ?? null],
  );
  // The event log keeps an hour: all of it recent, as in a service that prunes every minute, and written in the
  // order it was recorded, as the triggers write it.
  await db.query(
    `INSERT INTO job_events (job_id, revision, status, attempt, updated_at, recorded_at)
     SELECT id, revision, status, attempt, updated_at,
            now() - interval '50 minutes' + row_number() OVER (ORDER BY created_at) * (interval '50 minutes' / count(*) OVER ())
     FROM jobs`,
  );
  await db.query('RESET session_replication_role');
  await db.query('VACUUM ANALYZE jobs');
  await db.query('VACUUM ANALYZE job_events');
  log(
    `   seeded ${finished.toLocaleString('en-US')} finished + ${queued.toLocaleString('en-US')} queued jobs and their events in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`,
  );
}

/** Runs `run` once to warm the cache and the plan, then `rounds` times; the times in ms, sorted. */
export async function timeRuns(run: () => Promise<unknown>, rounds: number): Promise<number[]> {
  await run();
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}
