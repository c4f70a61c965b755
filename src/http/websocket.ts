import type { IncomingMessage, Server } from 'node:http';
import { type ExecutionArgs, GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { GraphQLContext } from '../graphql/context.ts';
import { withLogContext } from '../logger.ts';
import type { Authenticator } from './auth.ts';
import { type OriginPolicy, upgradeAllowed } from './origin.ts';
import { type RateLimiter, retryAfterSeconds } from './rate-limit.ts';
import { requestIdOf } from './router.ts';

export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;
/** Close code for a tenant past its connection quota: 1013 "Try Again Later" (RFC 6455's registry). */
export const CLOSE_TRY_AGAIN_LATER = 1013;

type OperationResult = ReturnType<NonNullable<Parameters<typeof useServer>[0]['execute']>>;
type EnvelopedRoot = {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
  requestId: string;
};

/**
 * graphql-ws (the graphql-transport-ws protocol) on the HTTP server's port and Yoga's path. Operations run
 * through Yoga's enveloped parse/validate/execute/subscribe, so they get the same context, plugins and error
 * masking as HTTP and SSE. graphql-ws awaits each send, so a client that stops reading stops its streams
 * instead of growing the server's buffers.
 */
export function attachWebSocketServer(
  server: Server,
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>,
  auth: Authenticator,
  origins: OriginPolicy,
  limits: { rateLimiter: RateLimiter; maxConnectionsPerTenant: number | null },
): { close: () => Promise<void> } {
  const wsServer = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: 1024 * 1024,
    // The router's Host and Origin rules (origin.ts): a page on a foreign site must not open a socket here.
    verifyClient: ({ req }: { req: IncomingMessage }, allow: (allowed: boolean, status?: number) => void) =>
      allow(upgradeAllowed(req, origins), 403),
  });
  const tenants = new WeakMap<object, string>();
  const connections = tenantConnections(limits.maxConnectionsPerTenant);
  // Each connection gets a request id (the upgrade request's X-Request-Id, or a new one); an operation logs
  // as <connection id>/<operation id>.
  const connectionIds = new WeakMap<object, string>();
  const disposable = useServer(
    {
      connectionInitWaitTimeout: 10_000,
      // The key comes in connectionParams.authorization ("Bearer <key>"); without one the socket is closed with
      // 4401, with a wrong one 4403, before any operation can run.
      onConnect: (ctx) => {
        const authenticated = auth.authenticate(String(ctx.connectionParams?.authorization ?? ''));
        if ('error' in authenticated) {
          if (authenticated.error === 'missing') ctx.extra.socket.close(4401, 'Unauthorized');
          return false;
        }
        if (!connections.admit(authenticated.tenant, ctx.extra.socket)) {
          ctx.extra.socket.close(CLOSE_TRY_AGAIN_LATER, 'too many connections for this tenant');
          return false;
        }
        tenants.set(ctx.extra.socket, authenticated.tenant);
        connectionIds.set(ctx.extra.socket, requestIdOf(ctx.extra.request));
        return true;
      },
      // The rootValue carries Yoga's enveloped execute/subscribe, set in onSubscribe below (Yoga's recipe).
      execute: (args: ExecutionArgs) => {
        const root = args.rootValue as EnvelopedRoot;
        return withLogContext({ requestId: root.requestId }, () => root.execute(args));
      },
      subscribe: (args: ExecutionArgs) => {
        const root = args.rootValue as EnvelopedRoot;
        return withLogContext({ requestId: root.requestId }, () => root.subscribe(args));
      },
      onSubscribe: async (ctx, id, payload) => {
        // graphql-ws has already entered this operation in ctx.subscriptions when it calls onSubscribe.
        if (Object.keys(ctx.subscriptions).length > MAX_SUBSCRIPTIONS_PER_CONNECTION) {
          return [
            new GraphQLError(`a connection may hold at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} operations at once`, {
              extensions: { code: 'LIMIT_EXCEEDED' },
            }),
          ];
        }
        const waitMs = limits.rateLimiter.take(tenants.get(ctx.extra.socket) ?? '');
        if (waitMs !== null) {
          const retryAfter = retryAfterSeconds(waitMs);
          return [
            new GraphQLError(`too many requests for this tenant; retry in ${retryAfter} s`, {
              extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retryAfter },
            }),
          ];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          tenant: tenants.get(ctx.extra.socket),
        });
        let document: ReturnType<typeof parse>;
        try {
          document = parse(payload.query);
        } catch (error) {
          if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
          throw error;
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors.map((error: GraphQLError) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe, requestId: `${connectionIds.get(ctx.extra.socket)}/${id}` },
        };
      },
    },
    wsServer,
  );
  return {
    // Closes every socket with 1001 (going away), so clients see a clean close they can reconnect after.
    close: async () => {
      await disposable.dispose();
    },
  };
}

/**
 * Counts each tenant's authenticated sockets, so that one tenant cannot hold every connection the process can
 * take; a socket is counted until it closes, and a tenant at zero is forgotten.
 */
function tenantConnections(max: number | null) {
  const counts = new Map<string, number>();
  return {
    admit(tenant: string, socket: { once: (event: 'close', listener: () => void) => unknown }): boolean {
      const held = counts.get(tenant) ?? 0;
      if (max !== null && held >= max) return false;
      counts.set(tenant, held + 1);
      socket.once('close', () => {
        const left = (counts.get(tenant) ?? 1) - 1;
        if (left > 0) counts.set(tenant, left);
        else counts.delete(tenant);
      });
      return true;
    },
  };
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  if (error.extensions.code) return error;
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { code } });
}
