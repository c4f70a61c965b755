import { createServer, type Server } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context.ts';
import { logger } from '../logger.ts';
import { handleGetJob, isGet, sendJson } from './rest.ts';

/** One node:http server: Yoga at /graphql, the REST job route, and a liveness probe. */
export function createHttpServer(options: {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  schema: GraphQLSchema;
  context: () => GraphQLContext;
}): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === options.yoga.graphqlEndpoint) {
      void options.yoga(req, res);
      return;
    }
    const jobMatch = /^\/jobs\/([^/]+)$/.exec(path);
    if (jobMatch && isGet(req)) {
      let id: string;
      try {
        id = decodeURIComponent(jobMatch[1] ?? '');
      } catch {
        return sendJson(res, 400, { error: { code: 'BAD_USER_INPUT', message: 'the job id in the path is not valid percent-encoding' } });
      }
      handleGetJob(id, options.schema, options.context(), res).catch((error) => {
        logger.error('GET /jobs/{id} failed', { err: error });
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } });
      });
      return;
    }
    if (path === '/healthz' && isGet(req)) return sendJson(res, 200, { status: 'ok' });
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } });
  });
}
