import { ConfigError, loadConfig } from '../config.ts';
import { ensureDatabaseExists, redactDatabaseUrl } from '../db/database.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { runMigrations } from '../db/migrate.ts';

/**
 * `jobql migrate` (`npm run migrate` in the repository): applies migrations/ to the configured database (the
 * embedded one when DATABASE_URL is unset) and exits. The service also does this at every start; this is for
 * deploy pipelines.
 */
export async function migrateCommand(): Promise<void> {
  try {
    const config = loadConfig();
    // Nothing here drains on Ctrl-C, so the embedded postmaster stays in the terminal's process group and stops with it.
    const embedded = config.database.url
      ? null
      : await startEmbeddedPostgres(config.database.embeddedDir, config.database.embeddedPort, { ownSession: false });
    const databaseUrl = config.database.url ?? (embedded?.databaseUrl as string);
    try {
      await ensureDatabaseExists(databaseUrl, config.database.timeouts);
      const applied = await runMigrations(databaseUrl, config.database.timeouts);
      process.stdout.write(`${redactDatabaseUrl(databaseUrl)}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}\n`);
    } finally {
      await embedded?.stop();
    }
  } catch (error) {
    process.stderr.write(
      `jobql: ${error instanceof ConfigError ? '' : 'migration failed: '}${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }
}
