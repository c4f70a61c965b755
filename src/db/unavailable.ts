// Whether an error means "the database cannot be reached or did not answer in time" (a transient outage the
// client should retry) rather than a bug. Decided from the error and its causes by code and message, so that the
// layers above (graphql/errors.ts) need not know slonik's or pg's classes.

// Node's socket errors: refused, reset, unreachable, name resolution.
const socketCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// PostgreSQL: shutting down or starting (57P0x), too many connections (53300), statement timeout (57014).
const sqlStates = new Set(['57P01', '57P02', '57P03', '53300', '57014']);
// pg's own: connect timeout ("timeout expired"), its query_timeout, a connection ended under a query; slonik's
// BackendTerminated* messages; a database closed to connections (ALLOW_CONNECTIONS false).
const messages = [
  /^timeout expired$/,
  /^Query read timeout$/,
  /^Connection terminated/,
  /^Backend has been terminated/,
  /due to a statement_timeout/,
  /is not currently accepting connections/,
  /^Client has encountered a connection error and is not queryable$/,
];

/** The error and the errors it was caused by, at most five deep (slonik and pg wrap one another's). */
function* causes(error: unknown): Generator<Error> {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) yield current;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  for (const current of causes(error)) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (socketCodes.has(code) || sqlStates.has(code) || code.startsWith('08'))) return true;
    if (messages.some((pattern) => pattern.test(current.message))) return true;
    // AggregateError (a connect to several addresses that all failed) carries its causes in `errors`.
    if (current instanceof AggregateError && current.errors.some(isDatabaseUnavailable)) return true;
  }
  return false;
}

/**
 * Whether the server cancelled a statement at statement_timeout (SQLSTATE 57014). Unlike the other unavailable
 * errors the server did answer, and the cause may be the statement's own wait (a lock held by a long transaction).
 */
export function isStatementTimeout(error: unknown): boolean {
  for (const current of causes(error)) {
    if ((current as { code?: unknown }).code === '57014' || /due to a statement_timeout/.test(current.message)) return true;
  }
  return false;
}
