import { createPool, type DatabasePool, type Interceptor, SchemaValidationError, sql } from 'slonik';

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

export async function createDatabasePool(databaseUrl: string, maxPoolSize = 10): Promise<DatabasePool> {
  return createPool(databaseUrl, {
    interceptors: [resultParserInterceptor],
    maxPoolSize,
    // Handlers never hold a connection while they work; a statement that needs longer than this is a bug.
    statementTimeout: 30_000,
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
