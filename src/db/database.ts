import pg from 'pg';
import { logger } from '../logger.ts';

/** The URL with its password replaced, for logs. */
export function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/**
 * The URL with `application_name` set (replacing one the URL carries): every connection of a process is named
 * after it (see newSessionTag), so that the sessions of a process declared dead can be found and terminated.
 * Set in the URL because a `pg` connection string overrides the client's own options.
 */
export function withApplicationName(databaseUrl: string, applicationName: string): string {
  const url = new URL(databaseUrl);
  url.searchParams.set('application_name', applicationName);
  return url.toString();
}

/**
 * Creates the database named in the URL when the server is reachable but the database is missing.
 * Two processes may race here: the loser's CREATE DATABASE fails with duplicate_database, which is fine.
 */
export async function ensureDatabaseExists(databaseUrl: string): Promise<void> {
  const probe = new pg.Client({ connectionString: databaseUrl });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error; // anything but "database does not exist"
  } finally {
    await probe.end().catch(() => {});
  }
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    logger.info('created database', { database: name });
  } catch (error) {
    // Another process created it first: PostgreSQL reports the loser of the race as duplicate_database, or,
    // when both inserted into pg_database at once, as a unique violation on its name index.
    const { code, constraint } = error as { code?: string; constraint?: string };
    if (code !== '42P04' && !(code === '23505' && constraint === 'pg_database_datname_index')) throw error;
  } finally {
    await admin.end();
  }
}
