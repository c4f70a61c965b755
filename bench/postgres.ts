import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { freePort } from '../test/helpers/free-port.ts';

export type BenchPostgres = {
  /** The server's admin URL (its `postgres` database): the run creates and drops its own database there. */
  serverUrl: URL;
  /** Where the server came from, for the report. */
  origin: string;
  /** Stops the embedded server and removes its folder; nothing for DATABASE_URL's server. */
  stop: () => Promise<void>;
};

/**
 * The PostgreSQL server the bench measures against, by the same rule as `npm start` and `npm test`:
 * DATABASE_URL's server when it is set, else an embedded PostgreSQL started for this run in a temporary
 * folder on a free port, so that `npm run bench` works on a machine with no database server. `embeddedOnly`
 * ignores DATABASE_URL, for a run that needs server `settings` a shared server lacks (bench/profile.ts needs
 * pg_stat_statements preloaded).
 */
export async function benchPostgres(options: { embeddedOnly?: boolean; settings?: Record<string, string> } = {}): Promise<BenchPostgres> {
  const fromEnvironment = options.embeddedOnly ? undefined : process.env.DATABASE_URL?.trim();
  if (fromEnvironment) return { serverUrl: new URL(fromEnvironment), origin: 'from DATABASE_URL', stop: async () => {} };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'jobql-bench-pg-'));
  // mkdtemp makes a folder only its owner can enter; as root, PostgreSQL runs as the postgres user.
  await chmod(dir, 0o755);
  try {
    const embedded = await startEmbeddedPostgres(path.join(dir, 'data'), await freePort(), { settings: options.settings });
    const serverUrl = new URL(embedded.databaseUrl);
    serverUrl.pathname = '/postgres';
    return {
      serverUrl,
      origin: 'embedded, started for this run; set DATABASE_URL to measure another server',
      stop: async () => {
        await embedded.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
