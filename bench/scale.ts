// Scale of data (issue 13): what the hot paths cost on a large table, as a ratio to the same operations on a
// nearly empty one, each of which must stay within 2×. Phases on the same database: "empty" (2,000 finished
// jobs), "large" (`finished` finished jobs over the last day plus `queued` queued ones) and "empty again" (the
// ratio is to the lower of the two empty figures), all seeded by bench/large-table.ts. The large table's queued jobs are scheduled (due one after another over the
// next day, from an hour from now) rather than due: a queue of due jobs is drained, so what stays queued on a
// healthy service is what waits for its time (runAt, retries in backoff). They are all of kind sleep, one of
// the kinds every claim asks for, so the claim has to pass over them, in its own kind's range of the index.
// Each operation runs through the real code: the claim and list statements from job-queries.ts on a slonik
// pool like the server's; pickup and GET /jobs/{id} against a real server process.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import type { JobCursor } from '../src/jobs/cursor.ts';
import type { JobStatus } from '../src/jobs/job.ts';
import { claimNextJobs, deleteFinishedJobs, findNextRunAt, type KindClaim, listJobs, pruneJobEvents } from '../src/jobs/job-queries.ts';
import { demoKinds } from '../src/kinds/demo.ts';
import { createGraphQLClient, createJob, createJobBody, percentile } from './http-load.ts';
import { seedLargeTable, timeRuns } from './large-table.ts';
import { startServerProcess } from './server-process.ts';

/** Runs per statement: many, as on a shared 2-core machine one run in ten is disturbed. */
const ROUNDS = 100;
const EMPTY_FINISHED = 2000;
const PICKUP_JOBS = 100;
const PICKUP_PAUSE_MS = 20;
const WORKER_CONCURRENCY = 4;
/** The worker id the measured claims run under (no process holds it; the claimed jobs are deleted at once). */
const BENCH_WORKER_ID = 2_000_000_000;
/** The goal: each operation on the large table within this factor of its figure on the empty one. */
const MAX_RATIO = 2;

export type ScaleRow = { figure: string; empty: number; large: number; ratio: number; pass: boolean };
type Phase = Map<string, number>;

/** What the runner asks for with WORKER_CONCURRENCY=4 free slots and the demo kinds (none limited). */
const claimKinds: KindClaim[] = demoKinds.map((kind) => ({ kind: kind.name, free: WORKER_CONCURRENCY, maxAttempts: 1, timeoutMs: null }));

export async function measureScale(options: {
  db: pg.Client;
  databaseUrl: string;
  finished: number;
  queued: number;
  logDir: string;
  log: (line: string) => void;
}): Promise<ScaleRow[]> {
  const { db, log } = options;
  const emptyPhase = async (name: string) => {
    log(`   phase "${name}": ${EMPTY_FINISHED.toLocaleString('en-US')} finished jobs`);
    await seedLargeTable({ db, finished: EMPTY_FINISHED, queued: 0, log });
    return measurePhase(options, name);
  };
  const before = await emptyPhase('empty');
  log(
    `   phase "large": ${options.finished.toLocaleString('en-US')} finished + ${options.queued.toLocaleString('en-US')} queued jobs (due from 1 h from now over a day)`,
  );
  await seedLargeTable({ db, finished: options.finished, queued: options.queued, queuedFrom: '1 hour', log });
  const large = await measurePhase(options, 'large');
  // The empty table again (seeding it takes a second): on a shared machine the load changes between phases,
  // so the two empty figures show how much, and the ratio is taken to the lower one (the stricter test).
  const after = await emptyPhase('empty again');

  const rows = [...before.keys()].map((figure) => {
    const e = Math.min(before.get(figure) ?? Number.NaN, after.get(figure) ?? Number.NaN);
    const l = large.get(figure) ?? Number.NaN;
    return { figure, empty: e, large: l, ratio: l / e, pass: l / e <= MAX_RATIO };
  });
  log('');
  log(`   | operation (p50) | empty (before / after large) | large | large ÷ lower empty | ≤ ${MAX_RATIO}× |`);
  log('   | --- | --- | --- | --- | --- |');
  for (const row of rows) {
    const empties = `${fmt(before.get(row.figure) ?? Number.NaN)} / ${fmt(after.get(row.figure) ?? Number.NaN)}`;
    log(`   | ${row.figure} | ${empties} | ${fmt(row.large)} | ${row.ratio.toFixed(2)} | ${row.pass ? 'PASS' : 'FAIL'} |`);
  }
  return rows;
}

const fmt = (ms: number) => (ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`);

async function measurePhase(options: Parameters<typeof measureScale>[0], phase: string): Promise<Phase> {
  const { db, log } = options;
  const figures: Phase = new Map();
  // The seed's WAL would otherwise trigger a checkpoint in the middle of the measurements (needs a superuser
  // or pg_checkpoint; without it, measure anyway).
  await db.query('CHECKPOINT').catch((error: unknown) => log(`   (no CHECKPOINT: ${error instanceof Error ? error.message : error})`));
  const record = (figure: string, times: readonly number[]) => {
    const p50 = percentile(times, 0.5);
    figures.set(figure, p50);
    log(`   ${phase.padEnd(11)} ${figure.padEnd(52)} p50 ${fmt(p50)}   max ${fmt(times.at(-1) ?? Number.NaN)}`);
  };
  const pool = await createDatabasePool(options.databaseUrl, 2);
  try {
    record('claim, nothing due', await timeRuns(() => claimOnce(pool, 0), ROUNDS));
    record('claim, one due job', await timeOneDueClaims(db, pool));
    // What an idle runner asks after each claim that left slots free (its due timer).
    const kindNames = claimKinds.map((kind) => kind.kind);
    record('findNextRunAt (idle runner)', await timeRuns(() => findNextRunAt(pool, kindNames), ROUNDS));
    for (const [figure, statuses, kind] of listFilters) {
      record(`jobs(first: 20) ${figure}`, await timeRuns(() => listJobs(pool, listArgs(statuses, kind, null)), ROUNDS));
    }
    for (const [figure, statuses, kind, deep] of listFilters) {
      if (!deep) continue;
      const after = await cursorOfPage(pool, statuses, kind, 50);
      record(`jobs(first: 20) page 50 by cursor, ${figure}`, await timeRuns(() => listJobs(pool, listArgs(statuses, kind, after)), ROUNDS));
    }
    record('deleteFinishedJobs (retention 30 d, none due)', await timeRuns(() => deleteFinishedJobs(pool, 30 * 86_400_000, 500), ROUNDS));
    record('pruneJobEvents (1 h, none due)', await timeRuns(() => pruneJobEvents(pool, 3_600_000, 1000), ROUNDS));
  } finally {
    await pool.end();
  }
  const server = await startServerProcess({
    name: `scale-${phase.replaceAll(' ', '-')}`,
    databaseUrl: options.databaseUrl,
    workerConcurrency: WORKER_CONCURRENCY,
    logDir: options.logDir,
  });
  try {
    record('GET /jobs/{id} (a finished job), real server', await timeGetJob(db, server.graphqlUrl));
    record('pickup created_at → started_at, real server', await pickupLatencies(db, server.graphqlUrl));
  } finally {
    await server.stop();
  }
  return figures;
}

/** The claim the runner makes with 4 free slots; `expected` jobs must come back (each is deleted at once). */
async function claimOnce(pool: DatabasePool, expected: number): Promise<void> {
  const jobs = await claimNextJobs(pool, BENCH_WORKER_ID, WORKER_CONCURRENCY, claimKinds);
  if (jobs.length !== expected) throw new Error(`the claim took ${jobs.length} jobs, not ${expected}`);
}

/**
 * Each round queues one due job (not timed), then times the claim that takes it. Of kind sleep, the kind of the
 * large table's scheduled jobs: the claim then reads that kind's range of the claim index past them.
 */
async function timeOneDueClaims(db: pg.Client, pool: DatabasePool): Promise<number[]> {
  const times: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    await db.query(`INSERT INTO jobs (id, kind, input) VALUES (gen_random_uuid(), 'sleep', '{"ms": 1}')`);
    const started = performance.now();
    await claimOnce(pool, 1);
    if (round > 0) times.push(performance.now() - started); // round 0 warms the cache and the plan
    await db.query('DELETE FROM jobs WHERE worker_id = $1', [BENCH_WORKER_ID]);
  }
  return times.sort((a, b) => a - b);
}

/** The list's filters as the jobs query passes them: [figure, statuses, kind, also read 50 pages deep (the empty table has 50 pages of these)]. */
const listFilters: ReadonlyArray<readonly [string, readonly JobStatus[] | null, string | null, boolean]> = [
  ['no filter', null, null, true],
  ['status COMPLETED', ['completed'], null, true],
  ['kind echo', null, 'echo', false],
  ['status FAILED, kind echo', ['failed'], 'echo', false],
];

const listArgs = (statuses: readonly JobStatus[] | null, kind: string | null, after: JobCursor | null) => ({
  tenant: 'default',
  statuses,
  kind,
  after,
  limit: 20,
});

/** The cursor a client holds after reading `page - 1` pages of 20 (the last job of the previous page). */
async function cursorOfPage(pool: DatabasePool, statuses: readonly JobStatus[] | null, kind: string | null, page: number) {
  let after: JobCursor | null = null;
  for (let read = 1; read < page; read++) {
    const last = (await listJobs(pool, listArgs(statuses, kind, after))).slice(0, 20).at(-1);
    if (!last) throw new Error(`fewer than ${page} pages`);
    after = { createdAt: last.createdAt, id: last.id };
  }
  return after;
}

/** GET /jobs/{id} of a finished job from the middle of the history, ROUNDS times after a warm-up, keep-alive. */
async function timeGetJob(db: pg.Client, graphqlUrl: string): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM jobs WHERE status = 'completed' ORDER BY created_at OFFSET (SELECT count(*) / 2 FROM jobs WHERE status = 'completed') LIMIT 1`,
  );
  const url = new URL(`/jobs/${rows[0]?.id}`, graphqlUrl);
  return timeRuns(async () => {
    const response = await fetch(url);
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET ${url.pathname}: HTTP ${response.status} ${body.slice(0, 200)}`);
  }, ROUNDS);
}

/** created_at → started_at of echo jobs created one at a time over HTTP while the runner is idle (database clock). */
async function pickupLatencies(db: pg.Client, graphqlUrl: string): Promise<number[]> {
  const client = createGraphQLClient(graphqlUrl, 1);
  const body = createJobBody('echo', { n: 1 });
  const ids: string[] = [];
  try {
    for (let i = 0; i < PICKUP_JOBS; i++) {
      ids.push(await createJob(client, body));
      await sleep(PICKUP_PAUSE_MS);
    }
  } finally {
    client.close();
  }
  const deadline = performance.now() + 20_000;
  for (;;) {
    const { rows } = await db.query<{ ms: number | null }>(
      'SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 AS ms FROM jobs WHERE id = ANY($1::uuid[])',
      [ids],
    );
    const started = rows.flatMap((row) => (row.ms === null ? [] : [row.ms]));
    if (started.length === ids.length) return started.slice(5).sort((a, b) => a - b); // the first few warm up
    if (performance.now() > deadline) throw new Error(`only ${started.length} of ${ids.length} pickup jobs started`);
    await sleep(100);
  }
}
