import { createClient as createSseClient, NetworkError } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import { asJobqlError, fromGraphQLErrors, fromHttpStatus, type GraphQLErrorShape, JobqlError, networkError } from './errors.ts';
import { idleTimeoutFetch, wsHeartbeat } from './heartbeat.ts';
import type { StartSubscription } from './stream.ts';

// The two ways a subscription reaches the server: graphql-ws (one WebSocket for all of a client's
// subscriptions) and Server-Sent Events (graphql-sse's "distinct connections" mode: one streamed POST per
// subscription, which is what the server's SSE speaks: `event: next` / `event: complete`).
//
// Neither library retries here (retryAttempts: 0): on a reconnect both would send the operation again with
// the variables it started with, while a resumed watch must ask for what comes after the last revision it
// has. watch-job.ts reconnects instead, with the current afterRevision, over either transport the same way.

export type Transport = {
  subscribe: (query: string, variables: Record<string, unknown>) => StartSubscription;
  dispose: () => void;
};

export type TransportOptions = {
  /** The server's GraphQL endpoint, http(s)://host:port/graphql. */
  endpoint: string;
  apiKey: string | undefined;
  fetch: typeof fetch;
  webSocketImpl: unknown;
  /** Silence from the server past this is a dropped connection (heartbeat.ts). */
  heartbeatTimeoutMs: number;
};

export function createWsTransport(options: TransportOptions): Transport {
  const heartbeat = wsHeartbeat(options.heartbeatTimeoutMs, () => client.terminate());
  const client = createWsClient({
    keepAlive: heartbeat.keepAlive,
    on: heartbeat.on,
    url: options.endpoint.replace(/^http/, 'ws'),
    // The server reads the key from connectionParams: browsers cannot set headers on a WebSocket.
    connectionParams: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : undefined,
    webSocketImpl: options.webSocketImpl,
    lazy: true,
    retryAttempts: 0,
    shouldRetry: () => false,
  });
  return {
    subscribe: (query, variables) => (sink) =>
      client.subscribe(
        { query, variables },
        { next: sink.next, complete: sink.complete, error: (error) => sink.error(fromWsError(error)) },
      ),
    dispose: () => void client.dispose(),
  };
}

/**
 * What graphql-ws reports: the operation's errors (an array), a close event (the socket closed: its code
 * says whether it was the key, or the server going away), or an Error (the socket failed to open).
 */
function fromWsError(error: unknown): JobqlError {
  if (Array.isArray(error)) return fromGraphQLErrors(error as GraphQLErrorShape[]);
  if (typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'number') {
    const { code, reason } = error as { code: number; reason?: string };
    const message = `the WebSocket closed with ${code}${reason ? ` ${reason}` : ''}`;
    if (code === 4401) return new JobqlError('UNAUTHENTICATED', 'an API key is required (the WebSocket closed with 4401)');
    if (code === 4403) return new JobqlError('UNAUTHENTICATED', 'the API key is not valid (the WebSocket closed with 4403)');
    // 1013 Try Again Later: this tenant holds its maximum of connections for now.
    if (code === 1013) return new JobqlError('UNAVAILABLE', message);
    // graphql-ws's 44xx are protocol errors between this client and the server: they would recur.
    if (code >= 4400 && code < 4500 && code !== 4499) return new JobqlError('BAD_REQUEST', message);
    if (code === 4500) return new JobqlError('INTERNAL_SERVER_ERROR', message);
    return networkError(message, error);
  }
  return asJobqlError(error);
}

export function createSseTransport(options: TransportOptions): Transport {
  const client = createSseClient({
    url: options.endpoint,
    headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
    fetchFn: idleTimeoutFetch(options.fetch, options.heartbeatTimeoutMs),
    retryAttempts: 0,
  });
  return {
    subscribe: (query, variables) => (sink) => {
      let cancelled = false;
      const stop = client.subscribe(
        { query, variables },
        {
          next: (result) => sink.next(result as { data?: unknown; errors?: GraphQLErrorShape[] }),
          complete: sink.complete,
          // A refused request (401, 429, 413, …) carries its GraphQL errors in the body: read them for the code.
          error: (error) => void fromSseError(error).then((mapped) => cancelled || sink.error(mapped)),
        },
      );
      return () => {
        cancelled = true;
        stop();
      };
    },
    dispose: () => client.dispose(),
  };
}

async function fromSseError(error: unknown): Promise<JobqlError> {
  if (!(error instanceof NetworkError)) return asJobqlError(error);
  const response = (error as NetworkError<Response>).response;
  if (!response) return networkError(error.message, error);
  try {
    const body = (await response.json()) as { errors?: GraphQLErrorShape[] };
    if (Array.isArray(body.errors) && body.errors.length > 0) return fromGraphQLErrors(body.errors, response.status);
  } catch {
    // not a GraphQL body (a proxy's page): the status says what it was
  }
  return fromHttpStatus(response.status, response.statusText);
}
