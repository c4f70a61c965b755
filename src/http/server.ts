import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context.ts';
import { logger, withLogContext } from '../logger.ts';
import type { Authenticator } from './auth.ts';
import { answerBrowserChecks, type OriginPolicy, refuseNonJsonBody } from './origin.ts';
import { countWhenClosed, handleProbe, jobPath, type ProbeOptions, routeOf } from './probes.ts';
import { type RateLimiter, refuseOverRate } from './rate-limit.ts';
import { handleGetJob, isGet, sendJson } from './rest.ts';

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

type HttpServerOptions = {
  yoga: YogaServerInstance<YogaServerContext, GraphQLContext>;
  schema: GraphQLSchema;
  contextFor: (tenant: string, lastEventId: string | null) => GraphQLContext;
  auth: Authenticator;
  rateLimiter: RateLimiter;
  maxBodyBytes: number;
  origins: OriginPolicy;
} & ProbeOptions;

/**
 * One node:http server: Yoga at /graphql, the REST job route, the liveness and readiness probes, and the metrics
 * when no API keys are configured (with keys they are on METRICS_PORT only: they describe every tenant's jobs).
 * Every route but the probes (and /metrics, where served) authenticates first (when API keys are configured):
 * no operation runs, and no body is read, without a key.
 */
export function createHttpServer(options: HttpServerOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const requestId = requestIdOf(req);
    res.setHeader('x-request-id', requestId);
    const started = performance.now();
    countWhenClosed(res, routeOf(path, options.yoga.graphqlEndpoint), options.metrics, () =>
      logger.debug('request', { requestId, method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }),
    );
    withLogContext({ requestId }, () => handle(req, res, path, options));
  });
}

function handle(req: IncomingMessage, res: ServerResponse, path: string, options: HttpServerOptions) {
  if (handleProbe(req, res, path, { ...options, withMetrics: !options.auth.required })) return;
  const isGraphQL = path === options.yoga.graphqlEndpoint;
  const jobMatch = jobPath.exec(path);
  if (!isGraphQL && !(jobMatch && (isGet(req) || req.method === 'OPTIONS'))) {
    return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } });
  }
  // Host, Origin, CORS preflight and body type: before authentication, as browsers send no key in a preflight.
  if (answerBrowserChecks(req, res, options.origins, isGraphQL)) return;
  const authenticated = options.auth.authenticate(req.headers.authorization);
  if ('error' in authenticated) {
    const message =
      authenticated.error === 'missing' ? 'an Authorization: Bearer <API key> header is required' : 'the API key is not valid';
    res.setHeader('www-authenticate', 'Bearer');
    if (isGraphQL) return sendJson(res, 401, { errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
    return sendJson(res, 401, { error: { code: 'UNAUTHENTICATED', message } });
  }
  if (refuseOverRate(options.rateLimiter, authenticated.tenant, res, isGraphQL)) return;
  if (isGraphQL) {
    // The body limit is checked from the declared length before a byte is read. A body of unknown length
    // (chunked) is refused: it could not be bounded without buffering it first.
    if (req.method === 'POST') {
      if (refuseNonJsonBody(req, res)) return;
      const length = Number(req.headers['content-length']);
      if (req.headers['content-length'] === undefined || !Number.isFinite(length)) {
        return sendJson(res, 411, {
          errors: [{ message: 'a Content-Length header is required', extensions: { code: 'LENGTH_REQUIRED' } }],
        });
      }
      if (length > options.maxBodyBytes) {
        return sendJson(res, 413, {
          errors: [
            {
              message: `the request body is ${length} bytes; at most ${options.maxBodyBytes} are accepted`,
              extensions: { code: 'PAYLOAD_TOO_LARGE' },
            },
          ],
        });
      }
    }
    // The tenant rides in Yoga's server context (merged with its own req/res), which serve.ts reads.
    void options.yoga.handle(req, res, { tenant: authenticated.tenant });
    return;
  }
  let id: string;
  try {
    id = decodeURIComponent(jobMatch?.[1] ?? '');
  } catch {
    return sendJson(res, 400, { error: { code: 'BAD_USER_INPUT', message: 'the job id in the path is not valid percent-encoding' } });
  }
  handleGetJob(id, options.schema, options.contextFor(authenticated.tenant, null), res).catch((error) => {
    logger.error('GET /jobs/{id} failed', { err: error });
    if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } });
  });
}
