import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from 'postgres-migrations';
import type { DatabaseTimeouts } from '../config.ts';
import { DEFAULT_DATABASE_TIMEOUTS, pgClientTimeouts } from './timeouts.ts';

export const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/**
 * Applies migrations/ in order. postgres-migrations takes an advisory lock for the whole run, so a second
 * process starting at the same moment waits and then finds nothing left to do.
 */
export async function runMigrations(databaseUrl: string, timeouts: DatabaseTimeouts = DEFAULT_DATABASE_TIMEOUTS): Promise<string[]> {
  // Each statement of a migration is bounded like any other (DATABASE_STATEMENT_TIMEOUT_MS): a migration that
  // needs longer (an index on a large table) is run with a larger setting, e.g. through `npm run migrate`.
  const client = new pg.Client({ connectionString: databaseUrl, ...pgClientTimeouts(timeouts) });
  await client.connect();
  try {
    const applied = await migrate({ client }, migrationsDir, { logger: () => {} });
    return applied.map((m) => m.name);
  } finally {
    await client.end();
  }
}
