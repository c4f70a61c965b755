import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context.ts';
import { logger } from '../logger.ts';
import type { Authenticator } from './auth.ts';
import { handleGetJob, isGet, sendJson } from './rest.ts';

/** The tenant an authenticated request acts for, set on the request before Yoga sees it. */
export const tenantOf = new WeakMap<IncomingMessage, string>();

/**
 * One node:http server: Yoga at /graphql, the REST job route, and the liveness and readiness probes. Every route but the probe
 * authenticates first (when API keys are configured): no operation runs, and no body is read, without a key.
 */
export function createHttpServer(options: {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  schema: GraphQLSchema;
  contextFor: (tenant: string, lastEventId: string | null) => GraphQLContext;
  auth: Authenticator;
  maxBodyBytes: number;
  /** Null when the process can serve; otherwise why not (for /readyz). */
  notReadyReason: () => Promise<string | null>;
}): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz' && isGet(req)) return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz' && isGet(req)) {
      void options
        .notReadyReason()
        .then((reason) =>
          reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reason }),
        );
      return;
    }
    const isGraphQL = path === options.yoga.graphqlEndpoint;
    const jobMatch = /^\/jobs\/([^/]+)$/.exec(path);
    if (!isGraphQL && !(jobMatch && isGet(req))) {
      return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } });
    }
    const authenticated = options.auth.authenticate(req.headers.authorization);
    if ('error' in authenticated) {
      const message =
        authenticated.error === 'missing' ? 'an Authorization: Bearer <API key> header is required' : 'the API key is not valid';
      res.setHeader('www-authenticate', 'Bearer');
      if (isGraphQL) return sendJson(res, 401, { errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
      return sendJson(res, 401, { error: { code: 'UNAUTHENTICATED', message } });
    }
    if (isGraphQL) {
      // The body limit is checked from the declared length before a byte is read. A body of unknown length
      // (chunked) is refused: it could not be bounded without buffering it first.
      if (req.method === 'POST') {
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
      tenantOf.set(req, authenticated.tenant);
      void options.yoga(req, res);
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
  });
}
