// `npm run bench`: createJob throughput over HTTP, pickup latency at idle, drain throughput, and the delivery
// of a completion to 1, 100 and 1,000 live subscribers, each against
// real server processes (`node src/main.ts`) on a fresh database that is dropped at the end. Takes about 70 s.
// Then the statements that must stay cheap on a large table (bench/large-table.ts), on BENCH_LARGE_TABLE_JOBS
// finished jobs (default 200,000; 1000000 is the size the README quotes, and adds a minute or two).
// `npm run bench -- large-table` runs that step alone.
// Then the scale of data (bench/scale.ts): the claim, pickup, the jobs list, deep pages, GET /jobs/{id} and a
// retention pass on BENCH_SCALE_JOBS finished jobs (default 1,000,000) + 1% queued, each as a ratio to the same
// on a nearly empty table (goal: ≤ 2×). Seeding a million jobs takes a minute or so; `npm run bench -- scale`
// runs that step alone. Several step names may be given: `npm run bench -- large-table scale`.
//
// The PostgreSQL server is DATABASE_URL's (only its server is used: the run creates its own database there),
// else an embedded PostgreSQL started for the run (bench/postgres.ts), as `npm start` does. Throughput is measured in rounds and reported as a median
// with its range, and every measurement is flagged when other processes used the CPUs meanwhile (on a 2-core
// machine a concurrent test run halves the figures). BENCH_CPU_PROF_DIR=dir makes the server processes write
// V8 CPU profiles there (open them in Chrome DevTools) to see where their time goes.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runMigrations } from '../src/db/migrate.ts';
import { type CpuShare, cpuShare, formatCpuShare, sampleCpu } from './cpu-usage.ts';
import { measureDelivery } from './delivery.ts';
import { createGraphQLClient, createJob, createJobBody, percentile, runClosedLoop } from './http-load.ts';
import { measureLargeTable } from './large-table.ts';
import { runBench } from './lifecycle.ts';
import { benchPostgres } from './postgres.ts';
import { measureScale } from './scale.ts';
import { type ServerProcess, startServerProcess, stopAllServerProcesses, tail } from './server-process.ts';

const REQUESTS = 3000;
/** Each measurement is repeated: on a shared 2-core VM one round can be 30% off the next. */
const CREATE_ROUNDS = 3;
const DRAIN_ROUNDS = 2;
const CALLERS = [1, 16, 64];
const WARMUP_REQUESTS = 500;
const PICKUP_JOBS = 200;
const PICKUP_WARMUP_JOBS = 10;
const PICKUP_PAUSE_MS = 20;
const PICKUP_WORKER_CONCURRENCY = 4;
const DRAIN_JOBS = 5000;
/** Subscribers to one job, and how many jobs to measure with each. */
const DELIVERY_SETUPS: ReadonlyArray<readonly [number, number]> = [
  [1, 30],
  [100, 10],
  [1000, 5],
];
const DRAIN_TIMEOUT_MS = 60_000;
/** A measurement during which other processes used more than this much of a core is flagged as disturbed. */
const OTHERS_WARN_PERCENT = 20;
const LARGE_TABLE_JOBS = Number(process.env.BENCH_LARGE_TABLE_JOBS ?? 200_000);
const LARGE_TABLE_QUEUED = Math.max(1000, Math.round(LARGE_TABLE_JOBS / 100));
const SCALE_JOBS = Number(process.env.BENCH_SCALE_JOBS ?? 1_000_000);
const SCALE_QUEUED = Math.max(1000, Math.round(SCALE_JOBS / 100));
/** The steps, in the order they run; naming some on the command line runs only those. */
const STEPS = {
  create: () => measureCreateJobThroughput(),
  pickup: () => measurePickupLatency(),
  drain: () => measureDrains([[16], [8, 8]]),
  delivery: () => measureDeliveryLatency(),
  'large-table': () => measureLargeTableStatements(), // late: it fills the table
  scale: () => measureScaleOfData(),
};
const chosenSteps = process.argv.slice(2).filter((arg) => arg !== '--');
for (const name of chosenSteps) {
  if (!(name in STEPS)) throw new Error(`unknown bench step "${name}"; the steps are: ${Object.keys(STEPS).join(', ')}`);
}
const steps = Object.entries(STEPS).filter(([name]) => chosenSteps.length === 0 || chosenSteps.includes(name));
/** The whole run is abandoned (servers stopped, database dropped) after this long; seeding takes its share. */
const RUN_TIMEOUT_MS = 240_000 + (Math.ceil(LARGE_TABLE_JOBS / 1_000_000) + Math.ceil(SCALE_JOBS / 1_000_000) * 2) * 300_000;

type Row = { figure: string; parameters: string; result: string };
const rows: Row[] = [];
/** Measurements during which other processes competed for the CPUs. */
const disturbed: string[] = [];

const runStarted = performance.now();
const postgres = await benchPostgres();
const serverUrl = postgres.serverUrl;
const databaseName = `jobql_bench_${randomBytes(5).toString('hex')}`;
const databaseUrl = new URL(serverUrl);
databaseUrl.pathname = `/${databaseName}`;
const logDir = mkdtempSync(path.join(os.tmpdir(), 'jobql-bench-'));
const profileDir = process.env.BENCH_CPU_PROF_DIR ? path.resolve(process.env.BENCH_CPU_PROF_DIR) : null;
const serverExecArgv = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];

const admin = new pg.Client({ connectionString: serverUrl.toString(), application_name: 'jobql bench (admin)' });
const db = new pg.Client({ connectionString: databaseUrl.toString(), application_name: 'jobql bench' });
let databaseCreated = false;
let dbConnected = false;

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Records the CPU share of a measurement and flags it when other processes competed for the CPUs. */
function checkQuiet(what: string, share: CpuShare): void {
  if (share.othersPercent !== null && share.othersPercent > OTHERS_WARN_PERCENT) {
    disturbed.push(`${what} (others ${Math.round(share.othersPercent)}% of a core)`);
  }
}

/** The server's address without credentials or database, for the report. */
function describeServer(url: URL): string {
  return `${url.protocol}//${url.username ? `${decodeURIComponent(url.username)}@` : ''}${url.host}`;
}

const ms = (value: number) => (Number.isNaN(value) ? '?' : value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(1)} ms`);
const perSecond = (value: number) => Math.round(value).toLocaleString('en-US');

async function main(): Promise<void> {
  await admin.connect();
  const version = (await admin.query<{ version: string }>('SELECT version()')).rows[0]?.version ?? '?';
  const cpus = os.cpus();
  log('jobql benchmark');
  log(
    `  machine:    ${cpus.length} CPUs (${cpus[0]?.model.trim() ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
  );
  log(`  node:       ${process.version}`);
  log(`  postgresql: ${version}`);
  log(`  server:     ${describeServer(serverUrl)} (${postgres.origin})`);
  log(`  database:   ${databaseName} (created for this run, dropped at the end)`);
  log(`  server logs: ${logDir}${profileDir ? `; CPU profiles: ${profileDir}` : ''}`);

  const idleBefore = sampleCpu([], databaseName);
  await sleep(1000);
  const idle = cpuShare(idleBefore, sampleCpu([], databaseName));
  log(`  before the run, for 1 s: ${formatCpuShare(idle)}`);
  if ((idle.othersPercent ?? 0) + idle.postgresPercent > OTHERS_WARN_PERCENT) {
    log('  WARNING: the machine is not idle; other work competes with the benchmark and its figures will be low.');
  }
  log();

  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(databaseName)}`);
  databaseCreated = true;
  // Migrated and connected before any step, so that any of them can run alone.
  await runMigrations(databaseUrl.toString());
  await db.connect();
  dbConnected = true;

  for (const [, run] of steps) await run();

  const seconds = (performance.now() - runStarted) / 1000;
  if (disturbed.length > 0) {
    log();
    log(`WARNING: other processes competed for the CPUs during ${disturbed.length} measurement(s); their figures are low:`);
    for (const what of disturbed) log(`  - ${what}`);
  }
  log();
  log(
    `For the README (${cpus.length} CPUs, Node ${process.version}, ${version.split(' on ')[0] ?? version}; \`npm run bench\`, ${seconds.toFixed(0)} s):`,
  );
  log();
  log('| Figure | Parameters | Result |');
  log('|---|---|---|');
  for (const row of rows) log(`| ${row.figure} | ${row.parameters} | ${row.result} |`);
}

/** 5. The gauges, retention, pruning and rare lists on a large table (late: it fills the table). */
async function measureLargeTableStatements(): Promise<void> {
  log(
    `5. statements on a large table: ${LARGE_TABLE_JOBS.toLocaleString('en-US')} finished + ${LARGE_TABLE_QUEUED.toLocaleString('en-US')} queued jobs (BENCH_LARGE_TABLE_JOBS)`,
  );
  rows.push(
    ...(await measureLargeTable({ db, databaseUrl: databaseUrl.toString(), finished: LARGE_TABLE_JOBS, queued: LARGE_TABLE_QUEUED, log })),
  );
  log();
}

/** 6. Scale of data: each hot path on a large table against the same on a nearly empty one (goal ≤ 2×). */
async function measureScaleOfData(): Promise<void> {
  log(
    `6. scale of data: ${SCALE_JOBS.toLocaleString('en-US')} finished + ${SCALE_QUEUED.toLocaleString('en-US')} scheduled jobs (BENCH_SCALE_JOBS) against 2,000 finished`,
  );
  const scale = await measureScale({
    db,
    databaseUrl: databaseUrl.toString(),
    finished: SCALE_JOBS,
    queued: SCALE_QUEUED,
    logDir,
    log,
  });
  const failed = scale.filter((row) => !row.pass);
  log(
    `   ${scale.length - failed.length} of ${scale.length} within 2×${failed.length > 0 ? `; over: ${failed.map((row) => row.figure).join(', ')}` : ''}`,
  );
  for (const row of scale) {
    rows.push({
      figure: `scale: ${row.figure}`,
      parameters: `${SCALE_JOBS.toLocaleString('en-US')} finished + ${SCALE_QUEUED.toLocaleString('en-US')} scheduled jobs vs 2,000 finished, p50`,
      result: `${row.large.toFixed(2)} ms vs ${row.empty.toFixed(2)} ms: ${row.ratio.toFixed(2)}× (${row.pass ? 'PASS' : 'FAIL'})`,
    });
  }
  log();
}

/** 1. createJob over HTTP from 1, 16 and 64 closed-loop callers against one API-only server process. */
async function measureCreateJobThroughput(): Promise<void> {
  log(
    `1. createJob over HTTP (kind echo, input {"n":1}), ${REQUESTS} requests per level and round, ${CREATE_ROUNDS} rounds ` +
      `(levels interleaved), 1 server process, WORKER_CONCURRENCY=0`,
  );
  const server = await startServerProcess({
    name: 'api',
    databaseUrl: databaseUrl.toString(),
    workerConcurrency: 0,
    logDir,
    execArgv: serverExecArgv,
  });
  const body = createJobBody('echo', { n: 1 });

  const warmupClient = createGraphQLClient(server.graphqlUrl, 16);
  const warmup = await runClosedLoop(WARMUP_REQUESTS, 16, () => createJob(warmupClient, body));
  warmupClient.close();
  if (warmup.errors > 0) throw new Error(`warm-up requests failed: ${warmup.firstError}`);

  const rates = new Map<number, number[]>(CALLERS.map((callers) => [callers, []]));
  const latencies = new Map<number, number[]>(CALLERS.map((callers) => [callers, []]));
  const errors = new Map<number, number>(CALLERS.map((callers) => [callers, 0]));
  for (let round = 1; round <= CREATE_ROUNDS; round++) {
    for (const callers of CALLERS) {
      await settleDatabase();
      const client = createGraphQLClient(server.graphqlUrl, callers);
      const before = sampleCpu([server.pid], databaseName);
      const result = await runClosedLoop(REQUESTS, callers, () => createJob(client, body));
      const cpu = cpuShare(before, sampleCpu([server.pid], databaseName));
      checkQuiet(`createJob round ${round}, ${callers} callers`, cpu);
      client.close();
      const rate = (result.latenciesMs.length / result.elapsedMs) * 1000;
      rates.get(callers)?.push(rate);
      latencies.get(callers)?.push(...result.latenciesMs);
      errors.set(callers, (errors.get(callers) ?? 0) + result.errors);
      const failed = result.errors > 0 ? `, ${result.errors} errors (first: ${result.firstError})` : '';
      log(
        `   round ${round}, ${String(callers).padStart(2)} ${callers === 1 ? 'caller: ' : 'callers:'} ${perSecond(rate).padStart(6)} req/s   ` +
          `p50 ${ms(percentile(result.latenciesMs, 0.5)).padStart(8)}   p99 ${ms(percentile(result.latenciesMs, 0.99)).padStart(8)}   ` +
          `(${(result.elapsedMs / 1000).toFixed(2)} s${failed}; ${formatCpuShare(cpu)})`,
      );
    }
  }
  await stopServer(server);
  log(`   summary: median req/s of the ${CREATE_ROUNDS} rounds (range); latency percentiles over all ${CREATE_ROUNDS * REQUESTS} requests`);
  for (const callers of CALLERS) {
    const rate = summarize(rates.get(callers) ?? []);
    const sorted = (latencies.get(callers) ?? []).sort((a, b) => a - b);
    const p50 = percentile(sorted, 0.5);
    const p99 = percentile(sorted, 0.99);
    const failed = errors.get(callers) ?? 0;
    log(
      `   ${String(callers).padStart(2)} ${callers === 1 ? 'caller: ' : 'callers:'} ${perSecond(rate.median).padStart(6)} req/s (${perSecond(rate.min)}–${perSecond(rate.max)})   ` +
        `p50 ${ms(p50)}   p99 ${ms(p99)}${failed > 0 ? `   ${failed} errors` : ''}`,
    );
    rows.push({
      figure: `createJob throughput, ${callers} concurrent caller${callers === 1 ? '' : 's'}`,
      parameters: `GraphQL over HTTP keep-alive, kind echo, ${REQUESTS} requests × ${CREATE_ROUNDS} rounds, 1 server process, WORKER_CONCURRENCY=0`,
      result:
        `${perSecond(rate.median)} req/s (rounds ${perSecond(rate.min)}–${perSecond(rate.max)}), p50 ${ms(p50)}, p99 ${ms(p99)}` +
        `${failed > 0 ? `, ${failed} errors` : ''}`,
    });
  }
  log();
}

/** 2. created_at → started_at of jobs created one at a time, so that the runner is idle each time. */
async function measurePickupLatency(): Promise<void> {
  log(
    `2. Pickup latency at idle: ${PICKUP_JOBS} echo jobs created one at a time over HTTP, ${PICKUP_PAUSE_MS} ms apart, ` +
      `1 server process, WORKER_CONCURRENCY=${PICKUP_WORKER_CONCURRENCY}`,
  );
  await db.query('TRUNCATE jobs CASCADE'); // job_events goes with it
  await settleDatabase();
  const server = await startServerProcess({
    name: 'pickup',
    databaseUrl: databaseUrl.toString(),
    workerConcurrency: PICKUP_WORKER_CONCURRENCY,
    logDir,
    execArgv: serverExecArgv,
  });
  const client = createGraphQLClient(server.graphqlUrl, 1);
  const body = createJobBody('echo', { n: 1 });
  const ids: string[] = [];
  let before = sampleCpu([server.pid], databaseName);
  for (let i = 0; i < PICKUP_WARMUP_JOBS + PICKUP_JOBS; i++) {
    if (i === PICKUP_WARMUP_JOBS) before = sampleCpu([server.pid], databaseName);
    const id = await createJob(client, body);
    if (i >= PICKUP_WARMUP_JOBS) ids.push(id);
    await sleep(PICKUP_PAUSE_MS);
  }
  const cpu = cpuShare(before, sampleCpu([server.pid], databaseName));
  checkQuiet('pickup latency', cpu);
  client.close();
  await waitFor('the pickup jobs to finish', 20_000, async () => {
    const { rows: counted } = await db.query<{ finished: number }>(
      'SELECT count(*)::int AS finished FROM jobs WHERE id = ANY($1::uuid[]) AND finished_at IS NOT NULL',
      [ids],
    );
    return counted[0]?.finished === ids.length;
  });
  // Both ends come from the database clock with microseconds: created_at is set by the INSERT, started_at by the claim.
  const { rows: stats } = await db.query<{ p50: number; p99: number; max: number; done_p50: number; completed: number }>(
    `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY pickup) AS p50,
            percentile_disc(0.99) WITHIN GROUP (ORDER BY pickup) AS p99,
            max(pickup) AS max,
            percentile_disc(0.5) WITHIN GROUP (ORDER BY done) AS done_p50,
            count(*) FILTER (WHERE status = 'completed')::int AS completed
       FROM (SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 AS pickup,
                    extract(epoch FROM finished_at - created_at)::float8 * 1000 AS done,
                    status
               FROM jobs WHERE id = ANY($1::uuid[])) AS measured`,
    [ids],
  );
  const s = stats[0];
  if (!s) throw new Error('no pickup figures');
  log(
    `   pickup (created_at → started_at): p50 ${ms(s.p50)}   p99 ${ms(s.p99)}   max ${ms(s.max)}; ` +
      `created → finished p50 ${ms(s.done_p50)}; ${s.completed}/${ids.length} completed`,
  );
  log(`   while creating: ${formatCpuShare(cpu)}`);
  rows.push({
    figure: 'Pickup latency at idle (created_at → started_at)',
    parameters: `${PICKUP_JOBS} echo jobs created one at a time over HTTP, ${PICKUP_PAUSE_MS} ms apart, 1 server process, WORKER_CONCURRENCY=${PICKUP_WORKER_CONCURRENCY}`,
    result: `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}`,
  });
  await stopServer(server);
  log();
}

/** 4. Live status: a job's completion in the database → each subscriber's graphql-ws client. */
async function measureDeliveryLatency(): Promise<void> {
  log(`4. Delivery of a job's completion to subscribers over graphql-ws, 1 API-only server process (WORKER_CONCURRENCY=0)`);
  await db.query('TRUNCATE jobs CASCADE');
  await settleDatabase();
  const server = await startServerProcess({
    name: 'live',
    databaseUrl: databaseUrl.toString(),
    workerConcurrency: 0,
    logDir,
    execArgv: serverExecArgv,
  });
  const client = createGraphQLClient(server.graphqlUrl, 1);
  const body = createJobBody('echo', { n: 1 });
  try {
    for (const [subscribers, jobs] of DELIVERY_SETUPS) {
      const before = sampleCpu([server.pid], databaseName);
      const figures = await measureDelivery({
        graphqlUrl: server.graphqlUrl,
        db,
        createJob: () => createJob(client, body),
        subscribers,
        jobs,
      });
      const cpu = cpuShare(before, sampleCpu([server.pid], databaseName));
      checkQuiet(`delivery to ${subscribers}`, cpu);
      log(
        `   ${subscribers} subscriber(s), ${jobs} jobs (${figures.samples} deliveries): p50 ${ms(figures.p50)}   p99 ${ms(figures.p99)}   max ${ms(figures.max)}`,
      );
      log(`   ${formatCpuShare(cpu)}`);
      rows.push({
        figure: `Completion → delivery, ${subscribers} subscriber${subscribers === 1 ? '' : 's'}`,
        parameters: `${jobs} jobs completed by an UPDATE once every subscriber had its snapshot; graphql-ws, ${Math.ceil(subscribers / 100)} connection(s); 1 API-only server process`,
        result: `p50 ${ms(figures.p50)}, p99 ${ms(figures.p99)}`,
      });
    }
  } finally {
    client.close();
    await stopServer(server);
  }
  log();
}

/** 3. Time for fresh server processes to run a backlog of queued echo jobs inserted directly with SQL. */
async function measureDrains(setups: readonly (readonly number[])[]): Promise<void> {
  const describe = (concurrencies: readonly number[]) =>
    `${concurrencies.length} server process${concurrencies.length === 1 ? '' : 'es'}, WORKER_CONCURRENCY=${concurrencies.join('+')}`;
  log(
    `3. Drain: ${DRAIN_JOBS} queued echo jobs inserted with SQL, then fresh server processes started; ${DRAIN_ROUNDS} rounds (setups interleaved)`,
  );
  const rates = new Map<number, number[]>(setups.map((_, i) => [i, []]));
  const failures = new Map<number, number>(setups.map((_, i) => [i, 0]));
  for (let round = 1; round <= DRAIN_ROUNDS; round++) {
    for (const [i, concurrencies] of setups.entries()) {
      log(`   round ${round}, ${describe(concurrencies)}:`);
      const { rate, failed } = await drainOnce(concurrencies, `r${round}`);
      rates.get(i)?.push(rate);
      failures.set(i, (failures.get(i) ?? 0) + failed);
    }
  }
  log(`   summary: median jobs/s of the ${DRAIN_ROUNDS} rounds (range), each over first claim → last finish`);
  for (const [i, concurrencies] of setups.entries()) {
    const rate = summarize(rates.get(i) ?? []);
    const failed = failures.get(i) ?? 0;
    const result = `${perSecond(rate.median)} jobs/s (rounds ${perSecond(rate.min)}–${perSecond(rate.max)})${failed > 0 ? `, ${failed} failed` : ''}`;
    log(`   ${describe(concurrencies)}: ${result}`);
    rows.push({
      figure: `Drain throughput, ${concurrencies.length} process${concurrencies.length === 1 ? '' : 'es'}`,
      parameters: `${DRAIN_JOBS} queued echo jobs × ${DRAIN_ROUNDS} rounds, ${describe(concurrencies)}, first claim → last finish`,
      result,
    });
  }
  log();
}

async function drainOnce(concurrencies: readonly number[], label: string): Promise<{ rate: number; failed: number }> {
  const processes = concurrencies.length;
  await db.query('TRUNCATE jobs CASCADE'); // job_events goes with it
  await db.query(`INSERT INTO jobs (id, kind, input) SELECT gen_random_uuid(), 'echo', '{}'::jsonb FROM generate_series(1, $1::int)`, [
    DRAIN_JOBS,
  ]);
  await settleDatabase();

  const spawned = performance.now();
  const servers = await Promise.all(
    concurrencies.map((workerConcurrency, i) =>
      startServerProcess({
        name: `drain-${label}-${processes}p-${i + 1}`,
        databaseUrl: databaseUrl.toString(),
        workerConcurrency,
        logDir,
        execArgv: serverExecArgv,
      }),
    ),
  );
  const listening = performance.now();
  const before = sampleCpu(
    servers.map((server) => server.pid),
    databaseName,
  );
  let failed = 0;
  await waitFor(
    `${DRAIN_JOBS} jobs to finish`,
    DRAIN_TIMEOUT_MS,
    async () => {
      const { rows: counted } = await db.query<{ finished: number; failed: number }>(
        `SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled'))::int AS finished,
                count(*) FILTER (WHERE status = 'failed')::int AS failed
           FROM jobs`,
      );
      failed = counted[0]?.failed ?? 0;
      return counted[0]?.finished === DRAIN_JOBS;
    },
    50,
  );
  const done = performance.now();
  const cpu = cpuShare(
    before,
    sampleCpu(
      servers.map((server) => server.pid),
      databaseName,
    ),
  );
  checkQuiet(`drain ${label}, ${processes} process${processes === 1 ? '' : 'es'}`, cpu);

  // Throughput over the database's own window: first claim to last finish, so process startup is left out.
  const { rows: stats } = await db.query<{ window_s: number }>(
    'SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 AS window_s FROM jobs',
  );
  const { rows: perWorker } = await db.query<{ worker_id: number; jobs: number }>(
    'SELECT worker_id, count(*)::int AS jobs FROM jobs GROUP BY worker_id ORDER BY worker_id',
  );
  const windowSeconds = stats[0]?.window_s ?? Number.NaN;
  const rate = DRAIN_JOBS / windowSeconds;
  log(
    `     ${perSecond(rate)} jobs/s (first claim → last finish ${windowSeconds.toFixed(2)} s; spawn → all finished ` +
      `${((done - spawned) / 1000).toFixed(2)} s, of which startup to "listening" ${((listening - spawned) / 1000).toFixed(2)} s)`,
  );
  log(
    `     jobs per process: ${perWorker.map((w) => `worker ${w.worker_id}: ${w.jobs}`).join(', ')}${failed > 0 ? `; ${failed} FAILED` : ''}; ` +
      `from "listening" to done: ${formatCpuShare(cpu)}`,
  );
  await Promise.all(servers.map(stopServer));
  return { rate, failed };
}

/** Median (the mean of the middle two for an even count), minimum and maximum. */
function summarize(values: readonly number[]): { median: number; min: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN };
}

let checkpointRefused = false;
/**
 * Makes each measurement start from the same state: the table vacuumed and analyzed, and the dirty pages of
 * the previous step written out (CHECKPOINT), so that neither autovacuum nor a checkpoint caused by the last
 * step lands in the middle of the next one. CHECKPOINT needs a superuser or pg_checkpoint; without it, go on.
 */
async function settleDatabase(): Promise<void> {
  await db.query('VACUUM ANALYZE jobs');
  if (checkpointRefused) return;
  try {
    await db.query('CHECKPOINT');
  } catch (error) {
    checkpointRefused = true;
    log(`   (CHECKPOINT refused, measuring without it: ${error instanceof Error ? error.message : String(error)})`);
  }
}

async function stopServer(server: ServerProcess): Promise<void> {
  const exit = await server.stop();
  if (exit !== 0) log(`   warning: server ${server.name} exited with ${exit}; last lines of its log:\n${tail(server.logFile, 10)}`);
}

/** Polls `check` until it is true; throws after `timeoutMs`. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 100): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

let cleaning: Promise<void> | null = null;
/** Stops the servers and drops the database, whatever happened; runs once. */
function cleanUp(succeeded: boolean): Promise<void> {
  cleaning ??= (async () => {
    await stopAllServerProcesses().catch((error: unknown) => log(`could not stop the server processes: ${String(error)}`));
    if (dbConnected) await db.end().catch(() => {});
    if (databaseCreated) {
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(databaseName)} WITH (FORCE)`);
        log(`dropped database ${databaseName}`);
      } catch (error) {
        log(`could not drop database ${databaseName}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    await admin.end().catch(() => {});
    await postgres.stop().catch((error: unknown) => log(`could not stop the embedded PostgreSQL: ${String(error)}`));
    if (succeeded && !profileDir) rmSync(logDir, { recursive: true, force: true });
    else log(`server logs kept in ${logDir}`);
    log(`total time ${((performance.now() - runStarted) / 1000).toFixed(1)} s`);
  })();
  return cleaning;
}

if (profileDir) mkdirSync(profileDir, { recursive: true });
await runBench({ name: 'benchmark', timeoutMs: RUN_TIMEOUT_MS, main, cleanUp, log });
