import type { Config } from './config.ts';
import { redactDatabaseUrl, untilAborted, waitForDatabase } from './db/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.ts';
import { runMigrations } from './db/migrate.ts';
import { createDatabasePool, type DatabasePool, pingDatabase } from './db/pool.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { buildSchema } from './graphql/schema.ts';
import { createAuthenticator } from './http/auth.ts';
import { createOriginPolicy } from './http/origin.ts';
import { startProbeServer } from './http/probes.ts';
import { createRateLimiter } from './http/rate-limit.ts';
import { type HttpFrontend, startHttpFrontend } from './http/serve.ts';
import { countUnfinishedJobs } from './jobs/job-queries.ts';
import { createJobService } from './jobs/job-service.ts';
import { createLiveHub, type LiveHub } from './live/live-hub.ts';
import { createLiveService } from './live/live-service.ts';
import { logger } from './logger.ts';
import { createMetrics } from './metrics/metrics.ts';
import { type Listener, startListener } from './notify/listener.ts';
import { recoverDeadWorkers, startMaintenance } from './runner/maintenance.ts';
import { type Runner, startRunner } from './runner/runner.ts';

export type App = {
  /** http://host:port of the running server; null in worker-only mode. */
  url: string | null;
  /** http://host:port of the probes-and-metrics server (METRICS_PORT); null when not set. */
  metricsUrl: string | null;
  databaseUrl: string;
  stop: () => Promise<void>;
};

/**
 * Starts everything in the order the promise to clients needs: database, migrations, recovery of jobs
 * whose process died, and only then the schema and the HTTP port, so no client ever sees a job reported
 * running by a process that is gone; the runner last. Used by main.ts and by the in-process tests.
 */
export async function startApp(config: Config, options: { signal?: AbortSignal } = {}): Promise<App> {
  // `signal` (SIGTERM during startup) abandons the steps that wait on the database at once; the embedded
  // PostgreSQL's own start is not abandoned, so that it is stopped below rather than left running.
  const { signal } = options;
  const timeouts = config.databaseTimeouts;
  let embedded: EmbeddedDatabase | null = null;
  let pool: DatabasePool | null = null;
  let runner: Runner | null = null;
  let web: HttpFrontend | null = null;
  let probes: { url: string; close: () => Promise<void> } | null = null;
  let listener: Listener | null = null;
  let hub: LiveHub | null = null;
  let maintenance: { stop: () => void } | null = null;
  let stopping = false;
  const metrics = createMetrics();
  try {
    if (!config.databaseUrl) {
      logger.info('DATABASE_URL is not set: starting the embedded PostgreSQL', { dir: config.embeddedPostgresDir });
      embedded = await startEmbeddedPostgres(config.embeddedPostgresDir, config.embeddedPostgresPort);
    }
    const databaseUrl = config.databaseUrl ?? (embedded as EmbeddedDatabase).databaseUrl;
    logger.info('using database', { database: redactDatabaseUrl(databaseUrl) });
    await waitForDatabase(databaseUrl, { timeouts, waitMs: config.databaseStartupTimeoutMs, signal });
    const applied = await untilAborted(runMigrations(databaseUrl, timeouts), signal);
    if (applied.length > 0) logger.info('applied migrations', { migrations: applied });

    // Pool: one connection per job slot for finishing and progress writes, plus room for API requests.
    pool = await untilAborted(createDatabasePool(databaseUrl, Math.max(10, config.workerConcurrency + 5), timeouts), signal);
    await untilAborted(recoverDeadWorkers(pool, config.retryBackoffMs, metrics), signal);
    maintenance = startMaintenance({
      pool,
      leaseMs: config.jobLeaseMs,
      retentionMs: config.jobRetentionMs,
      retryBackoffMs: config.retryBackoffMs,
      metrics,
    });

    listener = await untilAborted(startListener(databaseUrl, timeouts), signal);
    hub = createLiveHub({
      pool,
      listener,
      recheckIntervalMs: config.liveRecheckMs,
      maxWatches: config.maxSubscriptions,
      maxWatchesPerTenant: config.maxSubscriptionsPerTenant,
    });

    const schema = buildSchema();
    const liveHub = hub;
    const databasePool = pool;
    metrics.observe({
      jobCounts: (timeoutMs) => countUnfinishedJobs(databasePool, timeoutMs),
      runningHere: () => runner?.runningCount() ?? 0,
      slots: config.workerConcurrency,
      subscriptions: () => liveHub.activeWatches(),
      pool: () => databasePool.state(),
      timeoutMs: 2000,
    });
    // Each operation acts for one tenant: its use cases see only that tenant's jobs.
    const contextFor = (tenant: string, lastEventId: string | null): GraphQLContext => {
      const jobs = createJobService(databasePool, tenant, metrics);
      return { jobs, live: createLiveService(jobs, liveHub), lastEventId };
    };
    const auth = createAuthenticator(config.apiKeys);
    if (!auth.required && !config.workerOnly) {
      logger.warn('API_KEYS is not set: open single-tenant mode, no authentication; do not expose this port', { host: config.host });
    }
    // Migrations and recovery are done before any port opens, so readiness is: not stopping, the database
    // answers, and the runner (when this process runs jobs) has its session and can claim.
    const ready = async () => {
      if (stopping) return 'the process is shutting down';
      const reasons = [(await pingDatabase(databasePool, 1000)) ? null : 'the database does not answer', runner?.notReadyReason() ?? null];
      return reasons.filter((reason) => reason !== null).join('; ') || null;
    };
    if (auth.required && config.metricsPort === null && !config.workerOnly) {
      logger.warn('API_KEYS is set and METRICS_PORT is not: /metrics is served nowhere (with API keys it is on METRICS_PORT only)');
    }
    if (config.metricsPort !== null) {
      probes = await startProbeServer({ notReadyReason: ready, metrics, host: config.host, port: config.metricsPort });
      logger.info('serving /healthz, /readyz and /metrics', { url: probes.url });
    }
    if (!config.workerOnly) {
      web = await startHttpFrontend({
        notReadyReason: ready,
        metrics,
        schema,
        contextFor,
        auth,
        rateLimiter: createRateLimiter(config.rateLimit),
        maxConnectionsPerTenant: config.maxConnectionsPerTenant,
        graphiql: config.graphiql,
        introspection: config.introspection,
        maxBodyBytes: config.maxBodyBytes,
        maxDocumentBytes: config.maxDocumentBytes,
        origins: createOriginPolicy({
          corsOrigins: config.corsOrigins,
          allowedHosts: config.allowedHosts,
          openMode: !auth.required,
          bindHost: config.host,
        }),
        host: config.host,
        port: config.port,
      });
    }
    // The runner starts once the port is ours: a start that fails (port taken) must not have claimed jobs.
    if (config.workerConcurrency > 0) {
      runner = await untilAborted(
        startRunner({
          pool,
          databaseUrl,
          databaseTimeouts: timeouts,
          concurrency: config.workerConcurrency,
          pollIntervalMs: config.pollIntervalMs,
          leaseMs: config.jobLeaseMs,
          retryBackoffMs: config.retryBackoffMs,
          abortGraceMs: config.abortGraceMs,
          onJobChanged: listener.onChange,
          onDatabaseBack: listener.onReconnect,
          metrics,
        }),
        signal,
      );
    }
    const url = web?.url ?? null;
    if (url) logger.info('listening', { url: `${url}/graphql`, workerConcurrency: config.workerConcurrency });
    else logger.info('running jobs only: no HTTP port (WORKER_ONLY)', { workerConcurrency: config.workerConcurrency });

    let stopped: Promise<void> | null = null;
    const stop = () => {
      stopped ??= (async () => {
        // Shutdown order: stop accepting connections; let the runner finish or interrupt its jobs (it needs the
        // pool, and subscribers should see those final states); then end subscriptions cleanly (streams
        // complete, WebSockets close with 1001); then the remaining HTTP connections, the listener, the pool,
        // and the embedded database last.
        logger.info('stopping');
        stopping = true;
        web?.stopAccepting();
        await runner?.stop(config.shutdownGraceMs);
        maintenance?.stop();
        await hub?.close();
        await web?.close();
        await probes?.close();
        await listener?.close();
        await pool?.end();
        await embedded?.stop();
        logger.info('stopped');
      })();
      return stopped;
    };
    return { url, metricsUrl: probes?.url ?? null, databaseUrl, stop };
  } catch (error) {
    await runner?.stop(0).catch(() => {});
    maintenance?.stop();
    await hub?.close().catch(() => {});
    await listener?.close().catch(() => {});
    await web?.close().catch(() => {});
    await probes?.close().catch(() => {});
    await pool?.end().catch(() => {});
    await embedded?.stop().catch(() => {});
    throw error;
  }
}
