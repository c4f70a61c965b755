// `npm run bench:peers`: jobql against graphile-worker 0.18 and pg-boss 12 on the same PostgreSQL server in the
// same run, with the same loads (issue 13):
//   1. create: 5,000 jobs from 16 concurrent callers (jobql's createJob over HTTP with 1 and 2 API processes,
//      graphile-worker's addJob, pg-boss's send) and, as the ceiling, a trivial Yoga mutation of the same shape;
//   2. drain: 20,000 pre-inserted no-op jobs run by 16 workers (jobql with 1, 2 and 3 processes of
//      WORKER_CONCURRENCY=16; graphile-worker's default and batched modes; pg-boss 16 workers × batches of 16);
//   3. pickup latency at 50 jobs/s: the create's now() → the claim's now(), both from the database clock;
//   4. jobql alone (the peers have no subscriptions): a job's completion delivered to 1,000 graphql-ws subscribers.
// Each system gets a database of its own on the server (DATABASE_URL's, else an embedded one), created and dropped
// by the run. Every figure is the median of BENCH_PEERS_ROUNDS rounds (default 3; systems interleaved within a
// round) and is flagged when other processes used the CPUs meanwhile. At the end it prints the issue's ratios.
// BENCH_CPU_PROF_DIR=dir makes jobql's server processes write V8 CPU profiles there.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runMigrations } from '../../src/db/migrate.ts';
import { type CpuShare, cpuShare, formatCpuShare, sampleCpu } from '../cpu-usage.ts';
import { measureDelivery } from '../delivery.ts';
import { createGraphQLClient, createJob, createJobBody, type GraphQLClient, percentile, runClosedLoop } from '../http-load.ts';
import { runBench } from '../lifecycle.ts';
import { benchPostgres } from '../postgres.ts';
import { type ServerProcess, startServerProcess, stopAllServerProcesses } from '../server-process.ts';
import { openGraphileWorker, openPgBoss, type Peer, type PeerWorkerMode, startPeerWorker, startTrivialYoga } from './peers.ts';

const ROUNDS = Number(process.env.BENCH_PEERS_ROUNDS ?? 3);
const CALLERS = 16;
const CREATES = 5000;
const CREATE_WARMUP = 500;
const WORKERS = 16;
const DRAIN_JOBS = Number(process.env.BENCH_PEERS_DRAIN_JOBS ?? 20_000);
const JOBQL_DRAIN_PROCESSES = [1, 2, 3];
const PICKUP_RATE = 50;
const PICKUP_JOBS = 250;
const PICKUP_WARMUP = 20;
/** Subscribers to one job and how many jobs each round completes (issue 13: p99 ≤ 50 ms at 1,000). */
const DELIVERY_SUBSCRIBERS = 1000;
const DELIVERY_JOBS = 5;
const OTHERS_WARN_PERCENT = 20;
const RUN_TIMEOUT_MS = 30 * 60_000;
/** Starting three Node processes at once on a 2-core machine that others load can take half a minute. */
const START_TIMEOUT_MS = 120_000;

const runStarted = performance.now();
const postgres = await benchPostgres();
const tag = randomBytes(4).toString('hex');
const databaseUrl = (name: string) => {
  const url = new URL(postgres.serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
};
const databases = { jobql: `peers_${tag}_jobql`, graphile: `peers_${tag}_graphile`, pgboss: `peers_${tag}_pgboss` };
const logDir = mkdtempSync(path.join(os.tmpdir(), 'jobql-bench-peers-'));
const profileDir = process.env.BENCH_CPU_PROF_DIR ? path.resolve(process.env.BENCH_CPU_PROF_DIR) : null;
const serverExecArgv = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
const admin = new pg.Client({ connectionString: postgres.serverUrl.toString(), application_name: 'jobql bench:peers (admin)' });
const jobqlDb = new pg.Client({ connectionString: databaseUrl(databases.jobql), application_name: 'jobql bench:peers' });
const created: string[] = [];
const peers: Peer[] = [];
const disturbed: string[] = [];
/** Per figure, one value per round. */
const figures = new Map<string, number[]>();

const log = (line = '') => process.stdout.write(`${line}\n`);
const ms = (value: number) => (Number.isNaN(value) ? '?' : value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(1)} ms`);
const perSecond = (value: number) => (Number.isNaN(value) ? '?' : Math.round(value).toLocaleString('en-US'));
const record = (figure: string, value: number) => figures.set(figure, [...(figures.get(figure) ?? []), value]);

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}
const figure = (name: string) => median(figures.get(name) ?? []);
const range = (name: string, format: (value: number) => string) => {
  const values = figures.get(name) ?? [];
  return values.length > 1 ? ` (rounds ${format(Math.min(...values))}–${format(Math.max(...values))})` : '';
};

/** Flags a measurement during which processes other than the measured ones used more than a fifth of a core. */
function checkQuiet(what: string, share: CpuShare): string {
  if (share.othersPercent !== null && share.othersPercent > OTHERS_WARN_PERCENT) {
    disturbed.push(`${what} (others ${Math.round(share.othersPercent)}% of a core)`);
    return ' DISTURBED';
  }
  return '';
}

/** Same start for every measurement: the system's job table vacuumed, dirty pages written out. */
async function settle(peer: Peer | null): Promise<void> {
  if (peer) await peer.vacuum();
  else await jobqlDb.query('VACUUM ANALYZE jobs');
  await admin.query('CHECKPOINT').catch(() => {});
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const epochNow = () => performance.timeOrigin + performance.now();
const graphile = () => peers.find((peer) => peer.system === 'graphile-worker') as Peer;
const pgBoss = () => peers.find((peer) => peer.system === 'pg-boss') as Peer;

async function main(): Promise<void> {
  await admin.connect();
  const version = (await admin.query<{ version: string }>('SELECT version()')).rows[0]?.version ?? '?';
  log('jobql vs graphile-worker vs pg-boss (bench/peers)');
  log(`  machine:    ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), node ${process.version}`);
  log(`  postgresql: ${version.split(' on ')[0]} (${postgres.origin})`);
  log(`  databases:  ${Object.values(databases).join(', ')} (created for this run, dropped at the end)`);
  log(`  rounds:     ${ROUNDS} (BENCH_PEERS_ROUNDS); logs in ${logDir}${profileDir ? `; CPU profiles in ${profileDir}` : ''}`);
  const idleBefore = sampleCpu([], databases.jobql);
  await sleep(1000);
  log(`  before the run, for 1 s: ${formatCpuShare(cpuShare(idleBefore, sampleCpu([], databases.jobql)))}`);
  log();
  for (const name of Object.values(databases)) {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    created.push(name);
  }
  await runMigrations(databaseUrl(databases.jobql));
  await jobqlDb.connect();
  peers.push(await openGraphileWorker(databases.graphile, databaseUrl(databases.graphile), CALLERS));
  peers.push(await openPgBoss(databases.pgboss, databaseUrl(databases.pgboss), CALLERS));

  await measureCreates();
  await measureDrains();
  await measurePickups();
  await measureDeliveries();
  report(version);
}

type CreateSetup = { name: string; database: string; pids: () => number[]; call: () => Promise<unknown>; clear: () => Promise<void> };

/** 1. 5,000 creates from 16 closed-loop callers, systems interleaved within each round. */
async function measureCreates(): Promise<void> {
  log(`1. create: ${CREATES} jobs from ${CALLERS} concurrent callers per system and round (after ${CREATE_WARMUP} warm-up calls)`);
  const start = (name: string) =>
    startServerProcess({
      name,
      databaseUrl: databaseUrl(databases.jobql),
      workerConcurrency: 0,
      logDir,
      execArgv: serverExecArgv,
      startTimeoutMs: START_TIMEOUT_MS,
    });
  const [first, second] = await Promise.all([start('create-api-1'), start('create-api-2')]);
  const yoga = await startTrivialYoga(path.join(logDir, 'trivial-yoga.log'));
  const body = createJobBody('echo', { n: 1 });
  const clients: GraphQLClient[] = [];
  const roundRobin = (servers: ServerProcess[]) => {
    const own = servers.map((server) => createGraphQLClient(server.graphqlUrl, CALLERS));
    clients.push(...own);
    let next = 0;
    return () => createJob(own[next++ % own.length] as GraphQLClient, body);
  };
  const clearJobql = async () => void (await jobqlDb.query('TRUNCATE jobs CASCADE'));
  const yogaClient = createGraphQLClient(yoga.url, CALLERS);
  clients.push(yogaClient);
  const setups: CreateSetup[] = [
    {
      name: 'jobql createJob, 1 API process',
      database: databases.jobql,
      pids: () => [first.pid],
      call: roundRobin([first]),
      clear: clearJobql,
    },
    {
      name: 'jobql createJob, 2 API processes',
      database: databases.jobql,
      pids: () => [first.pid, second.pid],
      call: roundRobin([first, second]),
      clear: clearJobql,
    },
    { name: 'graphile-worker addJob', database: databases.graphile, pids: () => [], call: graphile().create, clear: graphile().clear },
    { name: 'pg-boss send', database: databases.pgboss, pids: () => [], call: pgBoss().create, clear: pgBoss().clear },
    {
      name: 'trivial Yoga mutation',
      database: databases.jobql,
      pids: () => [yoga.pid],
      call: () => createJob(yogaClient, body),
      clear: async () => {},
    },
  ];
  try {
    for (const setup of setups) await runClosedLoop(CREATE_WARMUP, CALLERS, setup.call);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const setup of setups) {
        await setup.clear();
        await settle(setup.database === databases.jobql ? null : (peers.find((peer) => peer.databaseName === setup.database) ?? null));
        const before = sampleCpu(setup.pids(), setup.database);
        const result = await runClosedLoop(CREATES, CALLERS, setup.call);
        const cpu = cpuShare(before, sampleCpu(setup.pids(), setup.database));
        const rate = (result.latenciesMs.length / result.elapsedMs) * 1000;
        record(setup.name, rate);
        const flag = checkQuiet(`create round ${round}, ${setup.name}`, cpu);
        const errors = result.errors > 0 ? `, ${result.errors} errors (first: ${result.firstError})` : '';
        log(
          `   round ${round}, ${setup.name.padEnd(33)} ${perSecond(rate).padStart(6)}/s   p50 ${ms(percentile(result.latenciesMs, 0.5))}` +
            `   p99 ${ms(percentile(result.latenciesMs, 0.99))}${errors}; ${formatCpuShare(cpu)}${flag}`,
        );
      }
    }
  } finally {
    for (const client of clients) client.close();
    await Promise.all([first.stop(), second.stop(), yoga.stop()]);
  }
  for (const setup of setups) log(`   median ${setup.name}: ${perSecond(figure(setup.name))}/s${range(setup.name, perSecond)}`);
  log();
}

type DrainSetup = { name: string; peer: Peer | null; mode?: PeerWorkerMode; processes?: number };

/** 2. A backlog of DRAIN_JOBS no-op jobs, inserted before the workers start; first job started → all finished. */
async function measureDrains(): Promise<void> {
  log(
    `2. drain: ${DRAIN_JOBS} no-op jobs pre-inserted, ${WORKERS} workers per process; first job started → none left (polled every 20 ms)`,
  );
  const setups: DrainSetup[] = [
    ...JOBQL_DRAIN_PROCESSES.map((processes) => ({
      name: `jobql, ${processes} process${processes === 1 ? '' : 'es'} × WORKER_CONCURRENCY=${WORKERS}`,
      peer: null,
      processes,
    })),
    { name: 'graphile-worker default', peer: graphile(), mode: 'graphile-default' },
    { name: 'graphile-worker batched', peer: graphile(), mode: 'graphile-batched' },
    { name: `pg-boss ${WORKERS}×${WORKERS} burst`, peer: pgBoss(), mode: 'pg-boss' },
  ];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const setup of setups) {
      const { rate, line } = setup.peer ? await drainPeer(setup, round) : await drainJobql(setup.processes ?? 1, round);
      record(setup.name, rate);
      log(`   round ${round}, ${setup.name.padEnd(44)} ${perSecond(rate).padStart(6)} jobs/s  ${line}`);
    }
  }
  for (const setup of setups) log(`   median ${setup.name}: ${perSecond(figure(setup.name))} jobs/s${range(setup.name, perSecond)}`);
  log();
}

async function drainJobql(processes: number, round: number): Promise<{ rate: number; line: string }> {
  await jobqlDb.query('TRUNCATE jobs CASCADE');
  await jobqlDb.query(`INSERT INTO jobs (id, kind, input) SELECT gen_random_uuid(), 'echo', '{}'::jsonb FROM generate_series(1, $1::int)`, [
    DRAIN_JOBS,
  ]);
  await settle(null);
  const servers = await Promise.all(
    Array.from({ length: processes }, (_, i) =>
      startServerProcess({
        name: `drain-r${round}-${processes}p-${i + 1}`,
        databaseUrl: databaseUrl(databases.jobql),
        workerConcurrency: WORKERS,
        logDir,
        execArgv: serverExecArgv,
        startTimeoutMs: START_TIMEOUT_MS,
      }),
    ),
  );
  const pids = servers.map((server) => server.pid);
  try {
    const before = sampleCpu(pids, databases.jobql);
    const unfinished = async () =>
      (await jobqlDb.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE status IN ('queued', 'running')`)).rows[0]?.n ?? -1;
    await waitFor(`${DRAIN_JOBS} jobql jobs`, 180_000, async () => (await unfinished()) === 0, 20);
    const done = epochNow();
    const cpu = cpuShare(before, sampleCpu(pids, databases.jobql));
    const { rows } = await jobqlDb.query<{ first: number; failed: number }>(
      `SELECT extract(epoch FROM min(started_at))::float8 * 1000 AS first, count(*) FILTER (WHERE status <> 'completed')::int AS failed FROM jobs`,
    );
    const first = rows[0]?.first ?? Number.NaN;
    const flag = checkQuiet(`drain round ${round}, jobql ${processes} process(es)`, cpu);
    const failed = rows[0]?.failed ? `, ${rows[0].failed} NOT COMPLETED` : '';
    return {
      rate: DRAIN_JOBS / ((done - first) / 1000),
      line: `${((done - first) / 1000).toFixed(2)} s${failed}; ${formatCpuShare(cpu)}${flag}`,
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

async function drainPeer(setup: DrainSetup, round: number): Promise<{ rate: number; line: string }> {
  const peer = setup.peer as Peer;
  await peer.clear();
  await peer.insert(DRAIN_JOBS);
  await settle(peer);
  const worker = await startPeerWorker(
    setup.mode as PeerWorkerMode,
    peer.connectionString,
    WORKERS,
    path.join(logDir, `${setup.mode}.log`),
  );
  try {
    const before = sampleCpu([worker.pid], peer.databaseName);
    await waitFor(`${DRAIN_JOBS} ${setup.name} jobs`, 180_000, async () => (await peer.unfinished()) === 0, 20);
    const done = epochNow();
    const cpu = cpuShare(before, sampleCpu([worker.pid], peer.databaseName));
    const first = await worker.firstJobAt;
    const flag = checkQuiet(`drain round ${round}, ${setup.name}`, cpu);
    return { rate: DRAIN_JOBS / ((done - first) / 1000), line: `${((done - first) / 1000).toFixed(2)} s; ${formatCpuShare(cpu)}${flag}` };
  } finally {
    await worker.stop();
  }
}

/** Creates `count` jobs at PICKUP_RATE per second (open loop: each at its own time, not after the previous one). */
async function createAtRate(count: number, create: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / PICKUP_RATE - performance.now();
    if (due > 0) await sleep(due);
    await create();
  }
}

/** 3. Pickup latency at 50 jobs/s, read from each system's own rows: the create's now() → the claim's now(). */
async function measurePickups(): Promise<void> {
  log(
    `3. pickup latency: ${PICKUP_JOBS} no-op jobs created at ${PICKUP_RATE}/s (after ${PICKUP_WARMUP} warm-up jobs), ${WORKERS} workers; ` +
      `the create's now() → the claim's now()`,
  );
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of ['jobql', 'graphile-worker', 'pg-boss'] as const) {
      const { latencies, cpu } =
        name === 'jobql' ? await pickupJobql(round) : await pickupPeer(name === 'pg-boss' ? pgBoss() : graphile(), round);
      const p50 = percentile(latencies, 0.5);
      const p99 = percentile(latencies, 0.99);
      record(`${name} pickup p50`, p50);
      record(`${name} pickup p99`, p99);
      const flag = checkQuiet(`pickup round ${round}, ${name}`, cpu);
      log(
        `   round ${round}, ${name.padEnd(16)} p50 ${ms(p50).padStart(8)}   p99 ${ms(p99).padStart(8)}   (${latencies.length} jobs; ${formatCpuShare(cpu)})${flag}`,
      );
    }
  }
  for (const name of ['jobql', 'graphile-worker', 'pg-boss']) {
    log(
      `   median ${name}: p50 ${ms(figure(`${name} pickup p50`))}${range(`${name} pickup p50`, ms)}, ` +
        `p99 ${ms(figure(`${name} pickup p99`))}${range(`${name} pickup p99`, ms)}`,
    );
  }
  log();
}

/** One jobql server process on an emptied jobs table, once the machine has settled. */
async function startOnEmptyTable(name: string, workerConcurrency: number): Promise<ServerProcess> {
  await jobqlDb.query('TRUNCATE jobs CASCADE');
  await settle(null);
  return startServerProcess({
    name,
    databaseUrl: databaseUrl(databases.jobql),
    workerConcurrency,
    logDir,
    execArgv: serverExecArgv,
    startTimeoutMs: START_TIMEOUT_MS,
  });
}

async function pickupJobql(round: number): Promise<{ latencies: number[]; cpu: CpuShare }> {
  const server = await startOnEmptyTable(`pickup-r${round}`, WORKERS);
  const client = createGraphQLClient(server.graphqlUrl, 1);
  const body = createJobBody('echo', { n: 1 });
  try {
    await createAtRate(PICKUP_WARMUP, () => createJob(client, body));
    const ids: string[] = [];
    const before = sampleCpu([server.pid], databases.jobql);
    await createAtRate(PICKUP_JOBS, async () => ids.push(await createJob(client, body)));
    const cpu = cpuShare(before, sampleCpu([server.pid], databases.jobql));
    const finished = async () =>
      (
        await jobqlDb.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::uuid[]) AND finished_at IS NOT NULL', [
          ids,
        ])
      ).rows[0]?.n === ids.length;
    await waitFor('the pickup jobs', 30_000, finished, 50);
    const { rows } = await jobqlDb.query<{ ms: number }>(
      'SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 AS ms FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY 1',
      [ids],
    );
    return { latencies: rows.map((row) => row.ms), cpu };
  } finally {
    client.close();
    await server.stop();
  }
}

async function pickupPeer(peer: Peer, round: number): Promise<{ latencies: number[]; cpu: CpuShare }> {
  await peer.clear();
  await settle(peer);
  const mode: PeerWorkerMode = peer.system === 'pg-boss' ? 'pg-boss' : 'graphile-default';
  const worker = await startPeerWorker(mode, peer.connectionString, WORKERS, path.join(logDir, `pickup-${mode}-r${round}.log`));
  try {
    await createAtRate(PICKUP_WARMUP, peer.create);
    await waitFor('the warm-up jobs', 30_000, async () => (await peer.unfinished()) === 0, 50);
    const read = await peer.recordPickups();
    const before = sampleCpu([worker.pid], peer.databaseName);
    await createAtRate(PICKUP_JOBS, peer.create);
    const cpu = cpuShare(before, sampleCpu([worker.pid], peer.databaseName));
    await waitFor('the pickup jobs', 30_000, async () => (await peer.unfinished()) === 0, 50);
    return { latencies: await read(), cpu };
  } finally {
    await worker.stop();
  }
}

/** 4. A job's completion (one UPDATE) → each of 1,000 graphql-ws subscribers' COMPLETED event (bench/delivery.ts). */
async function measureDeliveries(): Promise<void> {
  log(
    `4. delivery: a job's completion to ${DELIVERY_SUBSCRIBERS} graphql-ws subscribers, ${DELIVERY_JOBS} jobs per round, 1 API-only jobql process`,
  );
  for (let round = 1; round <= ROUNDS; round++) {
    const server = await startOnEmptyTable(`delivery-r${round}`, 0);
    const client = createGraphQLClient(server.graphqlUrl, 1);
    const body = createJobBody('echo', { n: 1 });
    try {
      const before = sampleCpu([server.pid], databases.jobql);
      const delivery = await measureDelivery({
        graphqlUrl: server.graphqlUrl,
        db: jobqlDb,
        createJob: () => createJob(client, body),
        subscribers: DELIVERY_SUBSCRIBERS,
        jobs: DELIVERY_JOBS,
      });
      const cpu = cpuShare(before, sampleCpu([server.pid], databases.jobql));
      record('jobql delivery p50', delivery.p50);
      record('jobql delivery p99', delivery.p99);
      const flag = checkQuiet(`delivery round ${round}`, cpu);
      log(
        `   round ${round}: p50 ${ms(delivery.p50)}   p99 ${ms(delivery.p99)}   max ${ms(delivery.max)}   (${delivery.samples} deliveries; ${formatCpuShare(cpu)})${flag}`,
      );
    } finally {
      client.close();
      await server.stop();
    }
  }
  log();
}

/** The issue's ratios, each with its goal, and the table for the README. */
function report(version: string): void {
  const drain = (name: string) => figure(name);
  const jobqlDrain = drain(`jobql, 1 process × WORKER_CONCURRENCY=${WORKERS}`);
  const jobqlCreate = figure('jobql createJob, 1 API process');
  const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : '?');
  const verdict = (met: boolean) => (met ? 'met' : 'NOT met');
  const lines: Array<[string, string, string]> = [
    [
      'drain: jobql ÷ graphile-worker batched',
      ratio(jobqlDrain, drain('graphile-worker batched')),
      `goal ≥ 1: ${verdict(jobqlDrain >= drain('graphile-worker batched'))}`,
    ],
    [
      'drain: jobql ÷ graphile-worker default',
      ratio(jobqlDrain, drain('graphile-worker default')),
      `goal ≥ 3: ${verdict(jobqlDrain >= 3 * drain('graphile-worker default'))}`,
    ],
    ['drain: jobql ÷ pg-boss', ratio(jobqlDrain, drain(`pg-boss ${WORKERS}×${WORKERS} burst`)), '(no goal)'],
    ...JOBQL_DRAIN_PROCESSES.slice(1).map((processes): [string, string, string] => [
      `drain: jobql ${processes} processes ÷ 1 process`,
      ratio(drain(`jobql, ${processes} processes × WORKER_CONCURRENCY=${WORKERS}`), jobqlDrain),
      '(scaling)',
    ]),
    [
      'create: jobql createJob ÷ graphile-worker addJob',
      ratio(jobqlCreate, figure('graphile-worker addJob')),
      `goal ≥ 2.5: ${verdict(jobqlCreate >= 2.5 * figure('graphile-worker addJob'))}`,
    ],
    [
      'create: jobql createJob ÷ trivial Yoga mutation',
      ratio(jobqlCreate, figure('trivial Yoga mutation')),
      `goal ≥ 0.5: ${verdict(jobqlCreate >= 0.5 * figure('trivial Yoga mutation'))}; stretch ≥ 0.8: ${verdict(jobqlCreate >= 0.8 * figure('trivial Yoga mutation'))}`,
    ],
    ['create: jobql createJob ÷ pg-boss send', ratio(jobqlCreate, figure('pg-boss send')), '(no goal)'],
    ['create: jobql 2 API processes ÷ 1', ratio(figure('jobql createJob, 2 API processes'), jobqlCreate), '(scaling)'],
    [
      'pickup p50: jobql ÷ graphile-worker',
      ratio(figure('jobql pickup p50'), figure('graphile-worker pickup p50')),
      `goal ≤ 1: ${verdict(figure('jobql pickup p50') <= figure('graphile-worker pickup p50'))}`,
    ],
    ['pickup p99: jobql', ms(figure('jobql pickup p99')), `goal ≤ 10 ms: ${verdict(figure('jobql pickup p99') <= 10)}`],
    [
      `delivery p99 to ${DELIVERY_SUBSCRIBERS.toLocaleString('en-US')} subscribers: jobql`,
      ms(figure('jobql delivery p99')),
      `goal ≤ 50 ms: ${verdict(figure('jobql delivery p99') <= 50)}`,
    ],
  ];
  log(`Ratios (medians of ${ROUNDS} rounds):`);
  for (const [what, value, goal] of lines) log(`  ${what.padEnd(50)} ${value.padStart(8)}   ${goal}`);
  if (disturbed.length > 0) {
    log();
    log(`WARNING: other processes competed for the CPUs during ${disturbed.length} measurement(s); their figures are low:`);
    for (const what of disturbed) log(`  - ${what}`);
  }
  const seconds = ((performance.now() - runStarted) / 1000).toFixed(0);
  const fmt = (name: string) => `${perSecond(figure(name))}${range(name, perSecond)}`;
  const pickup = (name: string) => `${ms(figure(`${name} pickup p50`))} / ${ms(figure(`${name} pickup p99`))}`;
  log();
  log(
    `For the README (${os.cpus().length} CPUs, Node ${process.version}, ${version.split(' on ')[0]}; \`npm run bench:peers\`, ${ROUNDS} rounds, ${seconds} s):`,
  );
  log();
  log('| figure (median of the rounds, range) | jobql | graphile-worker 0.18 | pg-boss 12 | ceiling |');
  log('|---|---|---|---|---|');
  log(
    `| drain ${DRAIN_JOBS.toLocaleString('en-US')} no-op jobs, ${WORKERS} workers, jobs/s | ${fmt(`jobql, 1 process × WORKER_CONCURRENCY=${WORKERS}`)} | ` +
      `default ${fmt('graphile-worker default')}; batched ${fmt('graphile-worker batched')} | ${fmt(`pg-boss ${WORKERS}×${WORKERS} burst`)} (${WORKERS}×${WORKERS} burst) | |`,
  );
  log(
    `| drain, jobql with 2 / 3 processes of ${WORKERS} workers, jobs/s | ${fmt(`jobql, 2 processes × WORKER_CONCURRENCY=${WORKERS}`)} / ` +
      `${fmt(`jobql, 3 processes × WORKER_CONCURRENCY=${WORKERS}`)} | | | |`,
  );
  log(
    `| create ${CREATES.toLocaleString('en-US')} jobs, ${CALLERS} callers, jobs/s | createJob over HTTP: ${fmt('jobql createJob, 1 API process')}; ` +
      `2 API processes: ${fmt('jobql createJob, 2 API processes')} | addJob ${fmt('graphile-worker addJob')} | send ${fmt('pg-boss send')} | ` +
      `trivial Yoga mutation: ${fmt('trivial Yoga mutation')} req/s |`,
  );
  log(
    `| pickup p50 / p99 at ${PICKUP_RATE} jobs/s | ${pickup('jobql')} | ${pickup('graphile-worker')} (default mode) | ${pickup('pg-boss')} (NOTIFY on) | |`,
  );
  log(
    `| completion → ${DELIVERY_SUBSCRIBERS.toLocaleString('en-US')} subscribers, p50 / p99 | ${ms(figure('jobql delivery p50'))} / ${ms(figure('jobql delivery p99'))} | (no subscriptions) | (no subscriptions) | |`,
  );
}

let cleaning: Promise<void> | null = null;
/** Stops every process and drops the databases, whatever happened; runs once. */
function cleanUp(succeeded: boolean): Promise<void> {
  cleaning ??= (async () => {
    await stopAllServerProcesses().catch((error: unknown) => log(`could not stop the server processes: ${String(error)}`));
    for (const peer of peers) await peer.close().catch((error: unknown) => log(`could not close ${peer.system}: ${String(error)}`));
    await jobqlDb.end().catch(() => {});
    for (const name of created) {
      await admin
        .query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
        .then(() => log(`dropped database ${name}`))
        .catch((error: unknown) => log(`could not drop database ${name}: ${error instanceof Error ? error.message : String(error)}`));
    }
    await admin.end().catch(() => {});
    await postgres.stop().catch((error: unknown) => log(`could not stop the embedded PostgreSQL: ${String(error)}`));
    if (succeeded && !profileDir) rmSync(logDir, { recursive: true, force: true });
    else log(`logs kept in ${logDir}`);
    log(`total time ${((performance.now() - runStarted) / 1000).toFixed(1)} s`);
  })();
  return cleaning;
}

if (profileDir) mkdirSync(profileDir, { recursive: true });
await runBench({ name: 'bench:peers', timeoutMs: RUN_TIMEOUT_MS, main, cleanUp, log });
