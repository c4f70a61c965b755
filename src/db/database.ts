import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { DatabaseTimeouts } from '../config.ts';
import { logger } from '../logger.ts';
import { DEFAULT_DATABASE_TIMEOUTS, pgClientTimeouts } from './timeouts.ts';
import { isDatabaseUnavailable } from './unavailable.ts';

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
export async function ensureDatabaseExists(databaseUrl: string, timeouts: DatabaseTimeouts = DEFAULT_DATABASE_TIMEOUTS): Promise<void> {
  const probe = new pg.Client({ connectionString: databaseUrl, ...pgClientTimeouts(timeouts) });
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
  const admin = new pg.Client({ connectionString: url.toString(), ...pgClientTimeouts(timeouts) });
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

/**
 * Startup's first contact: ensureDatabaseExists, retried about once a second while the database cannot be reached
 * (down, or hanging: each attempt is bounded by the connect timeout) until `waitMs` has passed; then one error
 * that says so. An error that is not an outage (a wrong password, a bad URL) fails at once. `signal` ends the wait
 * at once (SIGTERM during startup).
 */
export async function waitForDatabase(
  databaseUrl: string,
  options: { timeouts: DatabaseTimeouts; waitMs: number; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const left = deadline - Date.now();
    const connectMs = Math.max(100, Math.min(options.timeouts.connectMs, left));
    try {
      await untilAborted(ensureDatabaseExists(databaseUrl, { ...options.timeouts, connectMs }), options.signal);
      return;
    } catch (error) {
      options.signal?.throwIfAborted();
      if (!isDatabaseUnavailable(error)) throw error;
      if (Date.now() + 1000 > deadline) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`the database did not answer within ${options.waitMs} ms (DATABASE_STARTUP_TIMEOUT_MS); last error: ${reason}`);
      }
      if (attempt === 1) logger.warn('the database does not answer yet; retrying', { err: error, waitMs: options.waitMs });
      await sleep(1000, undefined, { signal: options.signal });
    }
  }
}

/** `promise`, or a rejection as soon as `signal` aborts (the promise itself runs on, unobserved). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
