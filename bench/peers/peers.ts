import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { PgBoss } from 'pg-boss';

// The two peer queues as the bench drives them: each in a database of its own, with its schema installed by
// its own migrations, a no-op task called `noop`, jobs pre-inserted in bulk through its own API, a count of
// unfinished jobs, a "create one job" call for the load generator, and its worker as a child process
// (peer-worker.ts). Peers' code is run, never copied: nothing here is imported by src/.

export type PeerSystem = 'graphile-worker' | 'pg-boss';
/** What peer-worker.ts runs: graphile-worker in its default or its batched mode, or pg-boss. */
export type PeerWorkerMode = 'graphile-default' | 'graphile-batched' | 'pg-boss';

export type Peer = {
  system: PeerSystem;
  databaseName: string;
  connectionString: string;
  /** The peer's own call that creates one job, as an application would make it. */
  create: () => Promise<unknown>;
  /** Deletes every job, so that each measurement starts from an empty queue. */
  clear: () => Promise<void>;
  /** Inserts `count` queued no-op jobs through the peer's bulk API. */
  insert: (count: number) => Promise<void>;
  /** Jobs not yet finished. */
  unfinished: () => Promise<number>;
  /** VACUUM ANALYZE of the peer's job table. */
  vacuum: () => Promise<void>;
  /** Starts recording each job's created → claimed times (for pickup latency); returns the reader. */
  recordPickups: () => Promise<() => Promise<number[]>>;
  db: pg.Client;
  close: () => Promise<void>;
};

export async function openGraphileWorker(databaseName: string, connectionString: string, callers: number): Promise<Peer> {
  await runMigrations({ connectionString, logger: undefined });
  const pool = new pg.Pool({ connectionString, max: callers, application_name: 'bench graphile-worker utils' });
  pool.on('error', (error) => process.stderr.write(`graphile-worker utils pool error: ${error.message}\n`));
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool });
  const db = new pg.Client({ connectionString, application_name: 'bench graphile-worker' });
  await db.connect();
  return {
    system: 'graphile-worker',
    databaseName,
    connectionString,
    db,
    create: () => utils.addJob('noop', { n: 1 }),
    clear: async () => {
      await db.query('TRUNCATE graphile_worker._private_jobs');
    },
    insert: async (count) => {
      for (let done = 0; done < count; done += 1000) {
        await utils.addJobs(Array.from({ length: Math.min(1000, count - done) }, () => ({ identifier: 'noop', payload: {} })));
      }
    },
    unfinished: async () =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0]?.n ?? -1,
    vacuum: async () => {
      await db.query('VACUUM ANALYZE graphile_worker._private_jobs');
    },
    // graphile-worker deletes a job when it completes: a trigger keeps its created_at and locked_at (the claim's
    // now()) in a side table, so that its pickup is read from the database clock like the others'.
    recordPickups: async () => {
      await db.query(`CREATE TABLE IF NOT EXISTS bench_pickups (created_at timestamptz, locked_at timestamptz);
        TRUNCATE bench_pickups;
        CREATE OR REPLACE FUNCTION bench_record_pickup() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN INSERT INTO bench_pickups VALUES (OLD.created_at, OLD.locked_at); RETURN NULL; END $$;
        CREATE OR REPLACE TRIGGER bench_record_pickup AFTER DELETE ON graphile_worker._private_jobs
          FOR EACH ROW EXECUTE FUNCTION bench_record_pickup();`);
      return async () => {
        const { rows } = await db.query<{ ms: number }>(
          `SELECT extract(epoch FROM locked_at - created_at)::float8 * 1000 AS ms FROM bench_pickups WHERE locked_at IS NOT NULL ORDER BY 1`,
        );
        await db.query('DROP TRIGGER bench_record_pickup ON graphile_worker._private_jobs; TRUNCATE bench_pickups');
        return rows.map((row) => row.ms);
      };
    },
    close: async () => {
      await utils.release();
      await pool.end();
      await db.end();
    },
  };
}

export async function openPgBoss(databaseName: string, connectionString: string, callers: number): Promise<Peer> {
  // The load generator's instance sends and inserts only: no scheduling or supervision of its own.
  const boss = new PgBoss({ connectionString, max: callers, schedule: false, supervise: false, application_name: 'bench pg-boss sender' });
  boss.on('error', (error: Error) => process.stderr.write(`pg-boss (sender) error: ${error.message}\n`));
  await boss.start();
  // `notify: true`: a send wakes idle workers through LISTEN/NOTIFY (pg-boss 12's useListenNotify) instead of polling.
  await boss.createQueue('noop', { notify: true });
  const db = new pg.Client({ connectionString, application_name: 'bench pg-boss' });
  await db.connect();
  return {
    system: 'pg-boss',
    databaseName,
    connectionString,
    db,
    create: () => boss.send('noop', { n: 1 }),
    clear: async () => {
      await db.query('TRUNCATE pgboss.job');
    },
    insert: async (count) => {
      for (let done = 0; done < count; done += 1000) {
        await boss.insert(
          'noop',
          Array.from({ length: Math.min(1000, count - done) }, () => ({ data: {} })),
        );
      }
    },
    unfinished: async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'noop' AND state IN ('created', 'retry', 'active')`,
        )
      ).rows[0]?.n ?? -1,
    vacuum: async () => {
      await db.query('VACUUM ANALYZE pgboss.job');
    },
    // pg-boss keeps finished jobs: created_on → started_on (the fetch's now()) are in its own table.
    recordPickups: async () => {
      await db.query('TRUNCATE pgboss.job');
      return async () => {
        const { rows } = await db.query<{ ms: number }>(
          `SELECT extract(epoch FROM started_on - created_on)::float8 * 1000 AS ms FROM pgboss.job WHERE name = 'noop' AND started_on IS NOT NULL ORDER BY 1`,
        );
        return rows.map((row) => row.ms);
      };
    },
    close: async () => {
      await boss.stop({ graceful: false });
      await db.end();
    },
  };
}

const workerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peer-worker.ts');

export type PeerWorker = {
  pid: number;
  /** Epoch ms at which the first job's handler started (resolves when it has). */
  firstJobAt: Promise<number>;
  stop: () => Promise<void>;
};

/** Starts peer-worker.ts as a child process and resolves once its workers run. */
export async function startPeerWorker(
  mode: PeerWorkerMode,
  connectionString: string,
  concurrency: number,
  logFile: string,
): Promise<PeerWorker> {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [workerScript, mode, connectionString, String(concurrency)], { stdio: ['ignore', fd, fd, 'ipc'] });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let resolveFirst: (at: number) => void = () => {};
  const firstJobAt = new Promise<number>((resolve) => {
    resolveFirst = resolve;
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} worker did not start within 120 s (log: ${logFile})`)), 120_000);
    child.on('message', (message: { type: string; at?: number; message?: string }) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (message.type === 'first' && typeof message.at === 'number') resolveFirst(message.at);
      else if (message.type === 'error') reject(new Error(`${mode} worker failed: ${message.message}`));
    });
    void exited.then(() => reject(new Error(`${mode} worker exited before it was ready (log: ${logFile})`)));
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { pid: child.pid ?? -1, firstJobAt, stop };
}

/** Starts trivial-yoga.ts as a child process; resolves with its GraphQL URL, its pid and how to stop it. */
export async function startTrivialYoga(logFile: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'trivial-yoga.ts');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [script], { stdio: ['ignore', fd, fd, 'ipc'] });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (message: { type: string; url?: string }) => {
      if (message.type === 'listening' && message.url) resolve(message.url);
    });
    void exited.then(() => reject(new Error(`the trivial Yoga server exited before listening (log: ${logFile})`)));
  });
  return {
    url,
    pid: child.pid ?? -1,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
