import { createPool, type DatabasePool, type Interceptor, SchemaValidationError } from 'slonik';

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
