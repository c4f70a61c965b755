// The one error type jobql/client throws. Whatever went wrong (a GraphQL error with extensions.code, an HTTP
// error the server wrote itself, a refused WebSocket, a connection that dropped), the caller gets a
// JobqlError with a code to branch on, and the client knows from that code whether a watch may reconnect.

/** The server's codes (see the README's "Errors"), plus NETWORK_ERROR for a server that could not be reached or read. */
export type JobqlErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'LIMIT_EXCEEDED'
  | 'RATE_LIMITED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'UNAVAILABLE'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR'
  | 'NETWORK_ERROR'
  // Any other code the server sends (GRAPHQL_VALIDATION_FAILED, QUERY_TOO_COMPLEX, …) is kept as it is.
  | (string & {});

/** One error as GraphQL servers send it. */
export type GraphQLErrorShape = {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: Record<string, unknown>;
};

export class JobqlError extends Error {
  /** The first error's extensions.code (NETWORK_ERROR when the server could not be reached or read). */
  readonly code: JobqlErrorCode;
  /** The first error's extensions (code, argument, index, retryAfterSeconds, …). */
  readonly extensions: Record<string, unknown>;
  /** Every error of the response, as sent. */
  readonly errors: readonly GraphQLErrorShape[];
  /** The HTTP status, when there was a response. */
  readonly status: number | undefined;

  constructor(
    code: JobqlErrorCode,
    message: string,
    options: { errors?: readonly GraphQLErrorShape[]; status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JobqlError';
    this.code = code;
    this.errors = options.errors ?? [{ message, extensions: { code } }];
    this.extensions = this.errors[0]?.extensions ?? { code };
    this.status = options.status;
  }
}

/**
 * Codes after which a watch reconnects (with backoff) instead of ending: the server or the path to it is away
 * for a while (a restart, a deploy, a shutting-down process, a database outage, a rate limit). Everything
 * else (a bad id, a missing key, a cap reached, an unexpected server error) would fail the same way again.
 */
const RETRYABLE_CODES = new Set(['NETWORK_ERROR', 'UNAVAILABLE', 'SERVICE_UNAVAILABLE', 'RATE_LIMITED']);

export function isRetryable(error: unknown): boolean {
  return error instanceof JobqlError && RETRYABLE_CODES.has(error.code);
}

/** A JobqlError from a GraphQL response's errors (the first one's code names it). */
export function fromGraphQLErrors(errors: readonly GraphQLErrorShape[], status?: number): JobqlError {
  const first = errors[0];
  const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : 'INTERNAL_SERVER_ERROR';
  return new JobqlError(code, first?.message ?? 'the server answered with an error', { errors, status });
}

export function networkError(message: string, cause?: unknown, status?: number): JobqlError {
  return new JobqlError('NETWORK_ERROR', message, { cause, status });
}

/** A response that is not GraphQL JSON (a proxy's error page, a cut body): its status says whether to retry. */
export function fromHttpStatus(status: number, statusText: string): JobqlError {
  const code =
    status === 401
      ? 'UNAUTHENTICATED'
      : status === 403
        ? 'FORBIDDEN'
        : status === 429
          ? 'RATE_LIMITED'
          : status >= 500
            ? 'NETWORK_ERROR'
            : 'BAD_REQUEST';
  return new JobqlError(code, `the server answered ${status} ${statusText}`.trim(), { status });
}

/** Anything a transport threw, as a JobqlError (a JobqlError passes through). */
export function asJobqlError(error: unknown): JobqlError {
  if (error instanceof JobqlError) return error;
  if (isGraphQLErrorList(error)) return fromGraphQLErrors(error);
  return networkError(error instanceof Error ? error.message : 'the connection to the server failed', error);
}

function isGraphQLErrorList(value: unknown): value is GraphQLErrorShape[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'object' && item !== null && 'message' in item);
}
