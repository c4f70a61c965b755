// `npm run bench:profile`: where a job's time goes in jobql's drain and createJob (issue 13, item 1). Runs
// a drain of BENCH_PROFILE_DRAIN_JOBS (default 20,000) pre-inserted echo jobs by one server process with
// WORKER_CONCURRENCY=16, then 5,000 createJob calls from 16 callers to one API-only process, and for each reports:
//   - the server's CPU per job, split by the code it ran (a V8 CPU profile, summed by package and src/ folder);
//   - PostgreSQL's CPU per job (its processes' /proc counters);
//   - the statements per job from pg_stat_statements (track = all, so the trigger's own statements show too);
//   - what PostgreSQL's busy backends were waiting on, sampled from pg_stat_activity every 10 ms.
// pg_stat_statements must be preloaded, which a shared server rarely is: this always starts an embedded
// PostgreSQL with shared_preload_libraries=pg_stat_statements (so its version is the embedded one, not
// DATABASE_URL's). The profiles are kept in BENCH_CPU_PROF_DIR (default: a temporary folder, printed).
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runMigrations } from '../src/db/migrate.ts';
import { monotonicMicroseconds, newProfiles, summarizeProfile } from './cpu-profile.ts';
import { cpuShare, formatCpuShare, sampleCpu } from './cpu-usage.ts';
import { createGraphQLClient, createJob, createJobBody, runClosedLoop } from './http-load.ts';
import { benchPostgres } from './postgres.ts';
import { type ServerProcess, startServerProcess, stopAllServerProcesses } from './server-process.ts';

const DRAIN_JOBS = Number(process.env.BENCH_PROFILE_DRAIN_JOBS ?? 20_000);
const CREATES = 5000;
const CREATE_WARMUP = 500;
const CALLERS = 16;
const WORKERS = 16;
const SAMPLE_EVERY_MS = 10;
/**
 * The bench's own connections say so, and its statements carry a `bench` comment after their first word
 * (pg_stat_statements drops a leading comment), so that neither is counted.
 */
const BENCH = 'jobql bench:profile';

const postgres = await benchPostgres({
  embeddedOnly: true,
  settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.max': '1000' },
});
const databaseName = 'jobql_profile';
const url = new URL(postgres.serverUrl);
url.pathname = `/${databaseName}`;
const databaseUrl = url.toString();
const profileDir = path.resolve(process.env.BENCH_CPU_PROF_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'jobql-profile-')));
const logDir = mkdtempSync(path.join(os.tmpdir(), 'jobql-profile-logs-'));
const admin = new pg.Client({ connectionString: postgres.serverUrl.toString(), application_name: BENCH });
const db = new pg.Client({ connectionString: databaseUrl, application_name: BENCH });
const log = (line = '') => process.stdout.write(`${line}\n`);
const us = (value: number) => `${Math.round(value).toLocaleString('en-US')} µs`;

async function main(): Promise<void> {
  await admin.connect();
  const version = (await admin.query<{ version: string }>('SELECT version()')).rows[0]?.version.split(' on ')[0] ?? '?';
  log(`jobql profile: ${os.cpus().length} CPUs, node ${process.version}, ${version} (embedded, pg_stat_statements preloaded)`);
  log(`  CPU profiles in ${profileDir}; server logs in ${logDir}`);
  await admin.query(`CREATE DATABASE ${databaseName}`);
  await runMigrations(databaseUrl);
  await db.connect();
  await db.query('CREATE EXTENSION pg_stat_statements');
  mkdirSync(profileDir, { recursive: true });
  log();
  await profileDrain('');
  await profileCreate('');
  if (process.env.BENCH_PROFILE_WITHOUT_NOTIFY === '0') return;
  if (await removeNotify()) {
    await profileDrain('WHAT-IF, without NOTIFY: ');
    await profileCreate('WHAT-IF, without NOTIFY: ');
  }
}

/**
 * A what-if on this throwaway database only (src/ and the migrations are untouched): `jobs_notify_changes`, the one
 * function the jobs triggers send their notifications through since migration 009 (one NOTIFY per statement, a few
 * for a statement changing many jobs), replaced by one that sends nothing, to measure what the NOTIFY (and the
 * lock every notifying transaction takes at commit) still costs the drain and createJob. The triggers still write
 * the events and build the entries, so the difference is the NOTIFY's alone. Live updates and the runner's
 * wake-ups are then off: the runner finds work by polling, which a backlog keeps busy anyway. Skipped when that
 * function is missing or another function still calls pg_notify (the triggers changed shape again);
 * BENCH_PROFILE_WITHOUT_NOTIFY=0 skips it.
 */
async function removeNotify(): Promise<boolean> {
  const { rows } = await db.query<{ name: string; args: string }>(
    `SELECT /* bench */ p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args FROM pg_proc p
      WHERE p.pronamespace = 'public'::regnamespace AND (p.prosrc ILIKE '%pg_notify%' OR p.proname = 'jobs_notify_changes')`,
  );
  const target = rows.find((row) => row.name === 'jobs_notify_changes' && row.args === 'entries text[]');
  const others = rows.filter((row) => row.name !== 'jobs_notify_changes').map((row) => row.name);
  if (!target || others.length > 0) {
    log(
      `(what-if without NOTIFY skipped: ${target ? `other functions notify too (${others.join(', ')})` : 'no jobs_notify_changes(entries text[])'})`,
    );
    return false;
  }
  await db.query(
    `/* bench */ CREATE OR REPLACE FUNCTION jobs_notify_changes(entries text[]) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RETURN; END $$`,
  );
  return true;
}

/** The drain: jobs inserted first, then one server process runs them all. */
async function profileDrain(prefix: string): Promise<void> {
  await db.query(`/* bench */ TRUNCATE jobs CASCADE`);
  await db.query(
    `/* bench */ INSERT INTO jobs (id, kind, input) SELECT gen_random_uuid(), 'echo', '{}'::jsonb FROM generate_series(1, $1::int)`,
    [DRAIN_JOBS],
  );
  await db.query('/* bench */ VACUUM ANALYZE jobs');
  await db.query('/* bench */ CHECKPOINT');
  await profileStep({
    name: `${prefix}drain of ${DRAIN_JOBS.toLocaleString('en-US')} pre-inserted echo jobs, 1 server process, WORKER_CONCURRENCY=${WORKERS}`,
    workerConcurrency: WORKERS,
    countedBy: 'finished_at',
    load: async () => {
      const deadline = performance.now() + 300_000;
      while (performance.now() < deadline) {
        const { rows } = await db.query<{ n: number }>(
          `SELECT /* bench */ count(*)::int AS n FROM jobs WHERE status IN ('queued', 'running')`,
        );
        if (rows[0]?.n === 0) return;
        await sleep(20);
      }
      throw new Error('the drain did not finish within 300 s');
    },
  });
}

/** createJob over HTTP from 16 callers to one API-only process (after a warm-up outside the window). */
async function profileCreate(prefix: string): Promise<void> {
  await db.query(`/* bench */ TRUNCATE jobs CASCADE`);
  await db.query('/* bench */ VACUUM ANALYZE jobs');
  const body = createJobBody('echo', { n: 1 });
  const calls = async (server: ServerProcess, count: number) => {
    const client = createGraphQLClient(server.graphqlUrl, CALLERS);
    try {
      const result = await runClosedLoop(count, CALLERS, () => createJob(client, body));
      if (result.errors > 0) throw new Error(`${result.errors} createJob calls failed: ${result.firstError}`);
      return (count / result.elapsedMs) * 1000;
    } finally {
      client.close();
    }
  };
  await profileStep({
    name: `${prefix}${CREATES.toLocaleString('en-US')} createJob calls over HTTP from ${CALLERS} callers, 1 API-only server process`,
    workerConcurrency: 0,
    countedBy: 'created_at',
    warmup: (server) => calls(server, CREATE_WARMUP).then(() => {}),
    load: async (server) => {
      log(`   ${Math.round(await calls(server, CREATES))} createJob/s`);
    },
  });
}

type StepOptions = {
  name: string;
  workerConcurrency: number;
  /** The column whose time says a job was done within the window. */
  countedBy: 'finished_at' | 'created_at';
  warmup?: (server: ServerProcess) => Promise<void>;
  load: (server: ServerProcess) => Promise<void>;
};

/** Runs one load against a fresh, profiled server process and prints where the time of a job went. */
async function profileStep(options: StepOptions): Promise<void> {
  log(options.name);
  const known = new Set(readdirSync(profileDir));
  const server = await startServerProcess({
    name: options.countedBy === 'finished_at' ? 'drain' : 'create',
    databaseUrl,
    workerConcurrency: options.workerConcurrency,
    logDir,
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  let window: { fromUs: number; toUs: number; seconds: number; jobs: number };
  let waits: Map<string, number>;
  let samples: number;
  let cpu: ReturnType<typeof cpuShare>;
  try {
    await options.warmup?.(server);
    await db.query('SELECT /* bench */ pg_stat_statements_reset()');
    const fromWall = new Date();
    const fromUs = monotonicMicroseconds();
    const before = sampleCpu([server.pid], databaseName);
    const sampler = sampleWaits();
    await options.load(server);
    ({ waits, samples } = await sampler.stop());
    cpu = cpuShare(before, sampleCpu([server.pid], databaseName));
    const toUs = monotonicMicroseconds();
    const { rows } = await db.query<{ n: number }>(`SELECT /* bench */ count(*)::int AS n FROM jobs WHERE ${options.countedBy} >= $1`, [
      fromWall,
    ]);
    window = { fromUs, toUs, seconds: (toUs - fromUs) / 1e6, jobs: rows[0]?.n ?? 0 };
    log(`   ${window.jobs} jobs in ${window.seconds.toFixed(2)} s (${Math.round(window.jobs / window.seconds)}/s); ${formatCpuShare(cpu)}`);
    await printStatements(window.jobs);
  } finally {
    await server.stop();
  }
  const perJob = (percent: number | null) => (((percent ?? Number.NaN) / 100) * window.seconds * 1e6) / window.jobs;
  log(`   CPU per job: server ${us(perJob(cpu.serverPercent))}, PostgreSQL ${us(perJob(cpu.postgresPercent))} (from /proc)`);
  printWaits(waits, samples);
  const [profile] = newProfiles(profileDir, known);
  if (profile) printProfile(profile, window);
  else log('   (no CPU profile was written)');
  log();
}

/** The statements of the window, heaviest first, per job (nested ones, the triggers', are inside their parent's time). */
async function printStatements(jobs: number): Promise<void> {
  const { rows } = await db.query<{ query: string; calls: string; total: number; toplevel: boolean }>(
    `SELECT /* bench */ query, calls, total_exec_time AS total, toplevel
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = $1 AND query NOT LIKE '%/* bench */%'
      ORDER BY total_exec_time DESC LIMIT 14`,
    [databaseName],
  );
  log('   statements (pg_stat_statements, track = all): calls per job, execution time per job, mean per call');
  for (const row of rows) {
    const calls = Number(row.calls);
    const shown = row.query.replace(/\s+/g, ' ').trim().slice(0, 90);
    log(
      `     ${(calls / jobs).toFixed(2).padStart(6)} × ${us((row.total * 1000) / jobs).padStart(9)}/job ${us((row.total * 1000) / calls).padStart(9)}/call ` +
        `${row.toplevel ? '' : '(nested) '}${shown}`,
    );
  }
}

/** Samples what the benchmark database's busy backends wait on, until stopped. */
function sampleWaits(): { stop: () => Promise<{ waits: Map<string, number>; samples: number }> } {
  const waits = new Map<string, number>();
  const client = new pg.Client({ connectionString: databaseUrl, application_name: BENCH });
  let samples = 0;
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ what: string; n: number }>(
        `SELECT /* bench */ CASE WHEN state = 'idle in transaction' THEN 'idle in transaction (the app holds it open)'
                                 ELSE coalesce(wait_event_type || ': ' || wait_event, 'running on CPU (no wait event)') END AS what,
                            count(*)::int AS n
           FROM pg_stat_activity
          WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> $2
            AND state IN ('active', 'idle in transaction')
          GROUP BY 1`,
        [databaseName, BENCH],
      );
      samples++;
      for (const row of rows) waits.set(row.what, (waits.get(row.what) ?? 0) + row.n);
      await sleep(SAMPLE_EVERY_MS);
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { waits, samples };
    },
  };
}

function printWaits(waits: Map<string, number>, samples: number): void {
  const total = [...waits.values()].reduce((sum, n) => sum + n, 0);
  log(
    `   busy backends (pg_stat_activity every ${SAMPLE_EVERY_MS} ms, ${samples} samples): ${(total / samples).toFixed(2)} on average, of which`,
  );
  for (const [what, n] of [...waits].sort((a, b) => b[1] - a[1]).slice(0, 10)) {
    log(`     ${((100 * n) / total).toFixed(1).padStart(5)}%  ${what}`);
  }
}

function printProfile(file: string, window: { fromUs: number; toUs: number; jobs: number }): void {
  const { shares, natives, busyMs } = summarizeProfile(file, window.fromUs, window.toUs);
  log(
    `   server CPU profile (${path.basename(file)}), within the window: ${busyMs.toFixed(0)} ms on the CPU; ` +
      'self time per job by where the code comes from:',
  );
  for (const share of shares.slice(0, 16)) {
    log(
      `     ${((100 * share.ms) / busyMs).toFixed(1).padStart(5)}%  ${us((share.ms * 1000) / window.jobs).padStart(9)}/job  ${share.category}`,
    );
  }
  const top = natives.slice(0, 5).map((share) => `${share.category} ${((100 * share.ms) / busyMs).toFixed(1)}%`);
  log(`     of which in native functions (counted above with their callers): ${top.join(', ')}`);
}

try {
  await main();
} catch (error) {
  log(`\nbench:profile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopAllServerProcesses().catch(() => {});
  await db.end().catch(() => {});
  await admin.end().catch(() => {});
  await postgres.stop().catch((error: unknown) => log(`could not stop the embedded PostgreSQL: ${String(error)}`));
}
