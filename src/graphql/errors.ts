import { GraphQLError } from 'graphql';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { JobqlError } from '../jobs/errors.ts';
import { logger } from '../logger.ts';

/** What a client is told to wait before retrying while the database is away (Retry-After, in seconds). */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * Whether an error in a result is the client's doing (a domain error with a code, or one graphql-js raised:
 * parse, validation, variable coercion) rather than something unexpected on our side. An error already
 * masked as INTERNAL_SERVER_ERROR is ours.
 */
export function isClientError(error: GraphQLError): boolean {
  if (error.extensions.code === 'INTERNAL_SERVER_ERROR') return false;
  const original = error.originalError;
  return !original || original instanceof JobqlError || original instanceof GraphQLError;
}

/**
 * The one place domain errors become GraphQL errors. A JobqlError keeps its message and gets its code in
 * extensions.code; a GraphQLError raised by graphql-js itself (validation, variable coercion) or by a scalar is
 * the client's doing and passes through; a database that cannot be reached or did not answer in time is
 * SERVICE_UNAVAILABLE (HTTP 503 with Retry-After, logged as a warning: it is an outage, not a bug); anything else
 * is unexpected: logged with its cause and masked.
 */
export function maskError(error: unknown, message: string): Error {
  if (error instanceof GraphQLError) {
    const original = error.originalError;
    if (original instanceof JobqlError) {
      return new GraphQLError(original.message, {
        nodes: error.nodes,
        path: error.path,
        extensions: { code: original.code, ...original.details },
      });
    }
    if (!original || original instanceof GraphQLError) {
      // graphql-js leaves variable coercion errors ("Variable $x got invalid value") without a code.
      if (error.extensions.code === undefined) {
        return new GraphQLError(error.message, {
          nodes: error.nodes,
          path: error.path,
          extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
        });
      }
      return error;
    }
  }
  const cause = error instanceof GraphQLError ? error.originalError : error;
  if (isDatabaseUnavailable(cause)) {
    logger.warn('database unavailable; answered SERVICE_UNAVAILABLE', { err: cause });
    return new GraphQLError('the database is unavailable; try again later', {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: {
        code: 'SERVICE_UNAVAILABLE',
        retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
        // Yoga takes the HTTP status and headers from here and leaves `http` out of the response body.
        http: { status: 503, headers: { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) } },
      },
    });
  }
  logger.error('unexpected error in a GraphQL operation', { err: cause });
  return new GraphQLError(message, {
    nodes: error instanceof GraphQLError ? error.nodes : undefined,
    path: error instanceof GraphQLError ? error.path : undefined,
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
}
