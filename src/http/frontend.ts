import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { GraphQLSchema } from 'graphql';
import { createYoga } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context.ts';
import { documentLimits } from '../graphql/document-limits.ts';
import { maskError } from '../graphql/errors.ts';
import { operationLimits } from '../graphql/limits.ts';
import { operationMetrics } from '../graphql/operation-metrics.ts';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Authenticator } from './auth.ts';
import { createDashboard } from './dashboard.ts';
import type { OriginPolicy } from './origin.ts';
import type { ProbeOptions } from './probes.ts';
import { strictUrlParams } from './query-params.ts';
import type { RateLimiter } from './rate-limit.ts';
import { createApiRouter, createProbeRouter, type YogaServerContext } from './router.ts';
import { sseWithEventIds } from './sse.ts';
import { attachWebSocketServer } from './websocket.ts';

const DRAIN_MS = 5000;

export type HttpFrontend = {
  /** http://host:port of the server. */
  url: string;
  /** Stops taking new connections; open ones carry on. */
  stopAccepting: () => void;
  /** Closes WebSockets (1001), lets requests in flight finish (bounded), then cuts what is left. */
  close: () => Promise<void>;
};

// The servers and their lifecycle: listen, stop accepting, drain, close. What each request gets is router.ts's.

export type FrontendOptions = {
  schema: GraphQLSchema;
  /** The context of an operation by `tenant`; lastEventId is SSE's Last-Event-ID header. */
  contextFor: (tenant: string, lastEventId: string | null) => GraphQLContext;
  auth: Authenticator;
  rateLimiter: RateLimiter;
  /** WebSocket connections one tenant may hold; null: no limit. */
  maxConnectionsPerTenant: number | null;
  graphiql: boolean;
  introspection: boolean;
  /** Serve the dashboard at /ui. */
  dashboard: boolean;
  maxBodyBytes: number;
  maxDocumentBytes: number;
  origins: OriginPolicy;
  notReadyReason: () => Promise<string | null>;
  metrics: Metrics;
  host: string;
  port: number;
};

/** The API port: Yoga at /graphql (HTTP and SSE), graphql-ws on the same port and path, the REST route, the probes. */
export async function startHttpFrontend(options: FrontendOptions): Promise<HttpFrontend> {
  const yoga = createYogaServer(options);
  const http = createServer(
    createApiRouter({
      yoga,
      schema: options.schema,
      contextFor: options.contextFor,
      auth: options.auth,
      rateLimiter: options.rateLimiter,
      maxBodyBytes: options.maxBodyBytes,
      origins: options.origins,
      dashboard: options.dashboard ? createDashboard() : null,
      notReadyReason: options.notReadyReason,
      metrics: options.metrics,
    }),
  );
  const websockets = attachWebSocketServer(http, yoga, options.auth, options.origins, {
    rateLimiter: options.rateLimiter,
    maxConnectionsPerTenant: options.maxConnectionsPerTenant,
  });
  try {
    await listen(http, options.host, options.port);
  } catch (error) {
    await websockets.close();
    throw error;
  }
  let closed: Promise<void> | null = null;
  const stopAccepting = () => {
    closed ??= new Promise<void>((resolve) => http.close(() => resolve()));
    http.closeIdleConnections();
  };
  return {
    url: urlOf(http),
    stopAccepting,
    close: async () => {
      stopAccepting();
      await websockets.close();
      // Requests in flight get to finish (a client whose createJob was cut off could not tell whether its
      // job exists); keep-alive connections are closed as they fall idle. Past the bound, cut the rest.
      await drain(http, closed as Promise<void>, DRAIN_MS);
      http.closeAllConnections();
      await closed;
      await yoga.dispose();
    },
  };
}

/** Yoga with every plugin and setting the API needs; the tenant comes in its server context (router.ts, websocket.ts). */
function createYogaServer(options: FrontendOptions) {
  // GraphiQL's page with its scripts, styles, fonts and editor workers inlined from @graphql-yoga/render-graphiql
  // (about 10 MB), so that it works offline and names no other host; Yoga's default page loads them from a
  // public CDN. Yoga's GraphiQL options are fixed, so the page is rendered once, when first asked for.
  let graphiqlPage: string | null = null;
  return createYoga<YogaServerContext, GraphQLContext>({
    schema: options.schema,
    graphqlEndpoint: '/graphql',
    // Every operation arrives with its tenant in Yoga's server context: HTTP requests from the router, which
    // authenticated them (router.ts), WebSocket operations from their connection (websocket.ts).
    context: ({ tenant, request }) => {
      if (!tenant) throw new Error('an operation reached Yoga without an authenticated tenant');
      return options.contextFor(tenant, request?.headers.get('last-event-id') ?? null);
    },
    plugins: [
      strictUrlParams(),
      sseWithEventIds(),
      operationLimits({ introspection: options.introspection }),
      operationMetrics(options.metrics, options.schema),
      // Last, so that the validation rules the plugins above add are in place when it caches a result.
      documentLimits({ maxBytes: options.maxDocumentBytes }),
    ],
    // Yoga's cache would keep every distinct document, refused ones too; documentLimits caches within a bound.
    parserAndValidationCache: false,
    // CORS, Host and body types are checked by the router (origin.ts) for HTTP and WebSocket alike; only JSON
    // bodies are served, so Yoga's multipart parser is off too.
    cors: false,
    multipart: false,
    graphiql: options.graphiql,
    renderGraphiQL: (graphiqlOptions) => {
      graphiqlPage ??= renderGraphiQL(graphiqlOptions);
      return graphiqlPage;
    },
    // One operation per request: batching would multiply the work one request can ask for.
    batching: false,
    maskedErrors: { maskError: (error, message) => maskError(error, message) },
    // Yoga reports every client error at its error level; the unexpected ones are logged by maskError.
    logging: {
      debug: (...args) => logger.debug('yoga', { args: args.map(String) }),
      info: (...args) => logger.debug('yoga', { args: args.map(String) }),
      warn: (...args) => logger.warn('yoga', { args: args.map(String) }),
      error: (...args) => logger.debug('yoga', { args: args.map(String) }),
    },
    landingPage: false,
  });
}

async function drain(http: Server, closed: Promise<void>, boundMs: number): Promise<void> {
  let done = false;
  void closed.then(() => {
    done = true;
  });
  for (const deadline = Date.now() + boundMs; !done && Date.now() < deadline; ) {
    http.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The probes alone on their own port (METRICS_PORT): what a worker-only process offers its orchestrator. */
export async function startProbeServer(
  options: ProbeOptions & { host: string; port: number },
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(createProbeRouter(options));
  await listen(server, options.host, options.port);
  return {
    url: urlOf(server),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Scrapes are short; an idle keep-alive connection must not hold the shutdown.
      server.closeAllConnections();
      await closed;
    },
  };
}

async function listen(server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/** http://host:port of a listening server. */
function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
