import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context.ts';
import { logger, withLogContext } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Authenticator } from './auth.ts';
import type { Dashboard } from './dashboard.ts';
import { answerBrowserChecks, type OriginPolicy, refuseNonJsonBody } from './origin.ts';
import { type Probe, type ProbeOptions, serveProbe } from './probes.ts';
import { type RateLimiter, refuseOverRate } from './rate-limit.ts';
import { sendError, sendUnexpectedError } from './respond.ts';
import { handleGetJob } from './rest.ts';

// The one place that routes HTTP requests: which route a path is (also the label of its metrics), and the
// order of the checks before a request is served. The WebSocket upgrade is routed by ws itself (websocket.ts).

/** What Yoga gets from its callers besides the request: the tenant the operation acts for, once authenticated. */
export type YogaServerContext = Record<string, unknown> & { tenant?: string };

// A request id the client sent is kept (so its logs and ours join up) when it is a plain token; otherwise,
// or without one, the server makes one. Either way it is sent back in X-Request-Id and is on every log line
// the request causes.
const requestIdShape = /^[A-Za-z0-9._:-]{1,100}$/;

export function requestIdOf(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && requestIdShape.test(sent) ? sent : randomUUID();
}

/** GET /jobs/{id}: the one REST route. */
const jobPath = /^\/jobs\/([^/]+)$/;

/** A route by name, which is also its label in the metrics: a fixed set, so paths clients make up do not become series. */
type Route = { name: Probe | 'graphql' | 'ui' | 'unknown' } | { name: 'jobs'; id: string };

function routeOf(path: string, graphqlEndpoint: string | null): Route {
  if (path === graphqlEndpoint) return { name: 'graphql' };
  if (path === '/ui' || path.startsWith('/ui/')) return { name: 'ui' };
  if (path === '/healthz' || path === '/readyz' || path === '/metrics') return { name: path.slice(1) as Probe };
  const job = jobPath.exec(path);
  // The id is still percent-encoded: it is decoded once the request is authenticated (serveJob).
  return job ? { name: 'jobs', id: job[1] as string } : { name: 'unknown' };
}

function isProbe(route: Route): route is { name: Probe } {
  return route.name === 'healthz' || route.name === 'readyz' || route.name === 'metrics';
}

function isGet(req: IncomingMessage): boolean {
  return req.method === 'GET' || req.method === 'HEAD';
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

function sendNoRoute(req: IncomingMessage, res: ServerResponse, path: string): void {
  sendError(res, 404, 'NOT_FOUND', `no route for ${req.method} ${path}`);
}

/**
 * Counts a request when it ends: 'close' comes for a finished response and for one the client cut short (an SSE
 * stream it closed, an aborted request), where 'finish' would miss the latter.
 */
function countWhenClosed(res: ServerResponse, route: Route, metrics: Metrics, onClose?: () => void): void {
  res.once('close', () => {
    metrics.httpRequest(route.name, res.headersSent ? res.statusCode : 'none');
    onClose?.();
  });
}

export type ApiRouterOptions = {
  yoga: YogaServerInstance<YogaServerContext, GraphQLContext>;
  schema: GraphQLSchema;
  contextFor: (tenant: string, lastEventId: string | null) => GraphQLContext;
  auth: Authenticator;
  rateLimiter: RateLimiter;
  maxBodyBytes: number;
  origins: OriginPolicy;
  /** The dashboard's files at /ui; null: DASHBOARD=false. */
  dashboard: Dashboard | null;
} & ProbeOptions;

/**
 * The API port: Yoga at /graphql, the REST job route, the liveness and readiness probes, and the metrics when no
 * API keys are configured (with keys they are on METRICS_PORT only: they describe every tenant's jobs). Each
 * request gets a request id and a log context, and is counted by route when it ends.
 */
export function createApiRouter(options: ApiRouterOptions): RequestListener {
  return (req, res) => {
    const path = pathOf(req);
    const route = routeOf(path, options.yoga.graphqlEndpoint);
    const requestId = requestIdOf(req);
    res.setHeader('x-request-id', requestId);
    const started = performance.now();
    countWhenClosed(res, route, options.metrics, () =>
      logger.debug('request', { requestId, method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }),
    );
    withLogContext({ requestId }, () => routeApiRequest(req, res, path, route, options));
  };
}

/**
 * The order of the checks. Every route but the probes (and /metrics, where served) authenticates first (when API
 * keys are configured): no operation runs, and no body is read, without a key.
 */
function routeApiRequest(req: IncomingMessage, res: ServerResponse, path: string, route: Route, options: ApiRouterOptions) {
  // 1. The probes, and /metrics in open mode: no key, no tenant data.
  if (isProbe(route) && isGet(req) && (route.name !== 'metrics' || !options.auth.required)) return serveProbe(res, route.name, options);
  // The dashboard's files are the same for everyone and hold no data: the page asks for a key itself, and
  // sends it with each API request it makes.
  if (route.name === 'ui' && options.dashboard) return options.dashboard.serve(req, res, path);
  // 2. Past here only /graphql and GET (HEAD, OPTIONS) /jobs/{id} are served.
  const graphql = route.name === 'graphql';
  if (!graphql && !(route.name === 'jobs' && (isGet(req) || req.method === 'OPTIONS'))) return sendNoRoute(req, res, path);
  // 3. Host, Origin, CORS preflight and body type: before authentication, as browsers send no key in a preflight.
  if (answerBrowserChecks(req, res, options.origins, graphql)) return;
  // 4. The API key, which names the tenant.
  const tenant = authenticate(req, res, options.auth, graphql);
  if (tenant === null) return;
  // 5. The tenant's request rate.
  if (refuseOverRate(options.rateLimiter, tenant, res, graphql)) return;
  // 6. The route itself.
  if (route.name === 'jobs') serveJob(route.id, tenant, res, options);
  else serveGraphQL(req, res, tenant, options);
}

/** The tenant of the request's API key; null when it was refused (401). */
function authenticate(req: IncomingMessage, res: ServerResponse, auth: Authenticator, graphql: boolean): string | null {
  const authenticated = auth.authenticate(req.headers.authorization);
  if (!('error' in authenticated)) return authenticated.tenant;
  const message = authenticated.error === 'missing' ? 'an Authorization: Bearer <API key> header is required' : 'the API key is not valid';
  res.setHeader('www-authenticate', 'Bearer');
  sendError(res, 401, 'UNAUTHENTICATED', message, graphql);
  return null;
}

function serveGraphQL(req: IncomingMessage, res: ServerResponse, tenant: string, options: ApiRouterOptions) {
  // The body limit is checked from the declared length before a byte is read. A body of unknown length
  // (chunked) is refused: it could not be bounded without buffering it first.
  if (req.method === 'POST') {
    if (refuseNonJsonBody(req, res)) return;
    const length = Number(req.headers['content-length']);
    if (req.headers['content-length'] === undefined || !Number.isFinite(length)) {
      return sendError(res, 411, 'LENGTH_REQUIRED', 'a Content-Length header is required', true);
    }
    if (length > options.maxBodyBytes) {
      const message = `the request body is ${length} bytes; at most ${options.maxBodyBytes} are accepted`;
      return sendError(res, 413, 'PAYLOAD_TOO_LARGE', message, true);
    }
  }
  // The tenant rides in Yoga's server context (merged with its own req/res), which frontend.ts reads.
  void options.yoga.handle(req, res, { tenant });
}

function serveJob(encodedId: string, tenant: string, res: ServerResponse, options: ApiRouterOptions) {
  let id: string;
  try {
    id = decodeURIComponent(encodedId);
  } catch {
    return sendError(res, 400, 'BAD_USER_INPUT', 'the job id in the path is not valid percent-encoding');
  }
  handleGetJob(id, options.schema, options.contextFor(tenant, null), res).catch((error) => {
    logger.error('GET /jobs/{id} failed', { err: error });
    if (!res.headersSent) sendUnexpectedError(res);
  });
}

/** METRICS_PORT: the probes and /metrics alone, open; what a worker-only process offers its orchestrator. */
export function createProbeRouter(options: ProbeOptions): RequestListener {
  return (req, res) => {
    const path = pathOf(req);
    const route = routeOf(path, null);
    countWhenClosed(res, route, options.metrics);
    if (isProbe(route) && isGet(req)) return serveProbe(res, route.name, options);
    sendNoRoute(req, res, path);
  };
}
