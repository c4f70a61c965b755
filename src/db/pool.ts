import pg from 'pg';
import { createPool, type DatabasePool, type Interceptor, SchemaValidationError, sql } from 'slonik';
import type { DatabaseTimeouts } from '../config.ts';
import { DEFAULT_DATABASE_TIMEOUTS, pgClientTimeouts } from './timeouts.ts';

// slonik types a result with sql.type(schema) but only checks it when an interceptor asks the schema:
// this one does, so a row that does not match its zod schema fails loudly instead of flowing on mistyped.
const resultParserInterceptor: Interceptor = {
  name: 'result-parser',
  transformRowAsync: async (queryContext, query, row) => {
    const parser = queryContext.resultParser;
    if (!parser) return row;
    const checked = await parser['~standard'].validate(row);
    if (checked.issues) throw new SchemaValidationError(query, row, checked.issues);
    return checked.value as typeof row;
  },
};

export type { DatabasePool };

/**
 * Every wait on the pool is bounded: opening a connection by `connectMs` (one attempt: the caller, not the pool,
 * decides whether to retry), a statement by `statementMs` on the server and a moment later on the client. A
 * caller queued for a busy pool waits for a connection to come back, which each does within those bounds, or
 * for a new one that fails within `connectMs`.
 */
export async function createDatabasePool(
  databaseUrl: string,
  maxPoolSize = 10,
  timeouts: DatabaseTimeouts = DEFAULT_DATABASE_TIMEOUTS,
): Promise<DatabasePool> {
  // slonik hands pg no client-side query timeout, and pg reads its default for each client it creates: set it
  // there. It reaches every pg client of this process; the others get the same value explicitly anyway.
  pg.defaults.query_timeout = pgClientTimeouts(timeouts).query_timeout;
  return createPool(databaseUrl, {
    interceptors: [resultParserInterceptor],
    maxPoolSize,
    // Handlers never hold a connection while they work; a statement that needs longer than this is a bug.
    statementTimeout: timeouts.statementMs,
    connectionTimeout: timeouts.connectMs,
    connectionRetryLimit: 0,
    // A connection whose query timed out against a hung server is destroyed: do not wait long for its goodbye.
    gracefulTerminationTimeout: 1000,
    captureStackTrace: false,
    // slonik's default runs DISCARD ALL each time a connection returns to the pool: a second round trip for
    // every query. Nothing here changes session state on pool connections (statement_timeout is set when a
    // connection opens; LISTEN and the advisory lock live on their own clients). Whoever adds a SET or a
    // temporary table on a pool connection must bring the reset back.
    resetConnection: async () => {},
  });
}

/** Whether the database answers a trivial query within `timeoutMs` (for /readyz). */
export async function pingDatabase(pool: DatabasePool, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([pool.oneFirst(sql.unsafe`SELECT 1`).then(() => true), timedOut]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
