import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from 'postgres-migrations';

export const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/**
 * Applies migrations/ in order. postgres-migrations takes an advisory lock for the whole run, so a second
 * process starting at the same moment waits and then finds nothing left to do.
 */
export async function runMigrations(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const applied = await migrate({ client }, migrationsDir, { logger: () => {} });
    return applied.map((m) => m.name);
  } finally {
    await client.end();
  }
}
