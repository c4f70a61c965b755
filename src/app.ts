import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga } from 'graphql-yoga';
import type { Config } from './config.ts';
import { ensureDatabaseExists, redactDatabaseUrl } from './db/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.ts';
import { runMigrations } from './db/migrate.ts';
import { createDatabasePool, type DatabasePool } from './db/pool.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { maskError } from './graphql/errors.ts';
import { buildSchema } from './graphql/schema.ts';
import { createHttpServer } from './http/server.ts';
import { sseWithEventIds } from './http/sse.ts';
import { attachWebSocketServer } from './http/websocket.ts';
import { failJobsOfDeadWorkers } from './jobs/job-queries.ts';
import { createJobService } from './jobs/job-service.ts';
import { logger } from './logger.ts';
import { createJobHub, type JobHub } from './notify/job-hub.ts';
import { createJobUpdates } from './notify/job-updates.ts';
import { type Listener, startListener } from './notify/listener.ts';
import { type Runner, startRunner } from './runner/runner.ts';

export type App = {
  /** http://host:port of the running server. */
  url: string;
  databaseUrl: string;
  stop: () => Promise<void>;
};

/**
 * Starts everything in the order the promise to clients needs: database, migrations, recovery of jobs
 * whose process died, and only then the schema and the HTTP port, so no client ever sees a job reported
 * running by a process that is gone; the runner last. Used by main.ts and by the in-process tests.
 */
const HTTP_DRAIN_MS = 5000;

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

export async function startApp(config: Config): Promise<App> {
  let embedded: EmbeddedDatabase | null = null;
  let pool: DatabasePool | null = null;
  let runner: Runner | null = null;
  let server: Server | null = null;
  let listener: Listener | null = null;
  let hub: JobHub | null = null;
  try {
    if (!config.databaseUrl) {
      logger.info('DATABASE_URL is not set: starting the embedded PostgreSQL', { dir: config.embeddedPostgresDir });
      embedded = await startEmbeddedPostgres(config.embeddedPostgresDir, config.embeddedPostgresPort);
    }
    const databaseUrl = config.databaseUrl ?? (embedded as EmbeddedDatabase).databaseUrl;
    logger.info('using database', { database: redactDatabaseUrl(databaseUrl) });
    await ensureDatabaseExists(databaseUrl);
    const applied = await runMigrations(databaseUrl);
    if (applied.length > 0) logger.info('applied migrations', { migrations: applied });

    // Pool: one connection per job slot for finishing and progress writes, plus room for API requests.
    pool = await createDatabasePool(databaseUrl, Math.max(10, config.workerConcurrency + 5));
    const recovered = await failJobsOfDeadWorkers(pool);
    if (recovered.length > 0)
      logger.warn('failed jobs of processes that are gone as INTERRUPTED', { count: recovered.length, jobIds: recovered.slice(0, 50) });

    listener = await startListener(databaseUrl);
    hub = createJobHub({ pool, listener, recheckIntervalMs: config.liveRecheckMs, maxWatches: config.maxSubscriptions });

    const schema = buildSchema();
    const jobs = createJobService(pool);
    const updates = createJobUpdates(jobs, hub);
    const context = (initial: { request?: Request }): GraphQLContext => ({
      jobs,
      updates,
      lastEventId: initial.request?.headers.get('last-event-id') ?? null,
      stream: { revision: null },
    });
    const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
      schema,
      graphqlEndpoint: '/graphql',
      context,
      plugins: [sseWithEventIds()],
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
    const http = createHttpServer({ yoga, schema, context: () => context({}) });
    server = http;
    const websockets = attachWebSocketServer(http, yoga);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host, () => resolve());
    });
    // The runner starts once the port is ours: a start that fails (port taken) must not have claimed jobs.
    if (config.workerConcurrency > 0) {
      const { onJobQueued } = hub;
      runner = await startRunner({
        pool,
        databaseUrl,
        concurrency: config.workerConcurrency,
        pollIntervalMs: config.pollIntervalMs,
        onJobQueued,
      });
    }
    const address = http.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    logger.info('listening', { url: `${url}/graphql`, workerConcurrency: config.workerConcurrency });

    let stopped: Promise<void> | null = null;
    const stop = () => {
      stopped ??= (async () => {
        // Shutdown order: stop accepting connections; let the runner finish or interrupt its jobs (it needs the
        // pool, and subscribers should see those final states); then end subscriptions cleanly (streams
        // complete, WebSockets close with 1001); then the remaining HTTP connections, the listener, the pool,
        // and the embedded database last.
        logger.info('stopping');
        const closed = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        await runner?.stop(config.shutdownGraceMs);
        await hub?.close();
        await websockets.close();
        // Requests in flight get to finish (a client whose createJob was cut off could not tell whether its
        // job exists); keep-alive connections are closed as they fall idle. Past the bound, cut the rest.
        await drain(http, closed, HTTP_DRAIN_MS);
        http.closeAllConnections();
        await closed;
        await yoga.dispose();
        await listener?.close();
        await pool?.end();
        await embedded?.stop();
        logger.info('stopped');
      })();
      return stopped;
    };
    return { url, databaseUrl, stop };
  } catch (error) {
    await runner?.stop(0).catch(() => {});
    await hub?.close().catch(() => {});
    await listener?.close().catch(() => {});
    server?.closeAllConnections();
    server?.close();
    await pool?.end().catch(() => {});
    await embedded?.stop().catch(() => {});
    throw error;
  }
}
