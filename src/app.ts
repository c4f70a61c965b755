import type { Config } from './config.ts';
import { redactDatabaseUrl, untilAborted, waitForDatabase, withApplicationName } from './db/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.ts';
import { runMigrations } from './db/migrate.ts';
import { createDatabasePool, type DatabasePool, pingDatabase } from './db/pool.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { buildSchema } from './graphql/schema.ts';
import { createAuthenticator } from './http/auth.ts';
import { type HttpFrontend, startHttpFrontend, startProbeServer } from './http/frontend.ts';
import { createOriginPolicy } from './http/origin.ts';
import { createRateLimiter } from './http/rate-limit.ts';
import { countUnfinishedJobs } from './jobs/job-queries.ts';
import { createJobService } from './jobs/job-service.ts';
import { createLiveHub, type LiveHub } from './live/live-hub.ts';
import { createLiveService } from './live/live-service.ts';
import { logger } from './logger.ts';
import { createMetrics } from './metrics/metrics.ts';
import { type Listener, startListener } from './notify/listener.ts';
import { recoverDeadWorkers, startMaintenance } from './runner/maintenance.ts';
import { type Runner, startRunner } from './runner/runner.ts';
import { newSessionTag, startWorkerPresence, type WorkerPresence } from './runner/worker-session.ts';

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
  const timeouts = config.database.timeouts;
  let embedded: EmbeddedDatabase | null = null;
  let pool: DatabasePool | null = null;
  let runner: Runner | null = null;
  let web: HttpFrontend | null = null;
  let probes: { url: string; close: () => Promise<void> } | null = null;
  let listener: Listener | null = null;
  let hub: LiveHub | null = null;
  let maintenance: { stop: () => void } | null = null;
  let presence: WorkerPresence | null = null;
  let stopping = false;
  const metrics = createMetrics();
  try {
    if (!config.database.url) {
      logger.info('DATABASE_URL is not set: starting the embedded PostgreSQL', { dir: config.database.embeddedDir });
      embedded = await startEmbeddedPostgres(config.database.embeddedDir, config.database.embeddedPort);
    }
    const databaseUrl = config.database.url ?? (embedded as EmbeddedDatabase).databaseUrl;
    logger.info('using database', { database: redactDatabaseUrl(databaseUrl) });
    await waitForDatabase(databaseUrl, { timeouts, waitMs: config.database.startupTimeoutMs, signal });
    const applied = await untilAborted(runMigrations(databaseUrl, timeouts), signal);
    if (applied.length > 0) logger.info('applied migrations', { migrations: applied });

    // Every connection of this process carries its session tag, so that others can end them all if it stops
    // answering (see worker-session.ts).
    const sessionTag = newSessionTag();
    // Pool: one connection per job slot for finishing and progress writes, plus room for API requests.
    pool = await untilAborted(
      createDatabasePool(withApplicationName(databaseUrl, `${sessionTag}:pool`), Math.max(10, config.runner.concurrency + 5), timeouts),
      signal,
    );
    const recovery = {
      pool,
      leaseMs: config.runner.leaseMs,
      abortGraceMs: config.runner.abortGraceMs,
      retryBackoffMs: config.runner.retryBackoffMs,
      metrics,
    };
    await untilAborted(recoverDeadWorkers(recovery), signal);
    maintenance = startMaintenance({ ...recovery, retentionMs: config.maintenance.jobRetentionMs });

    // Every process, API-only ones included, proves it answers: a frozen one's listener holds the
    // notification queue for everyone until the others terminate it.
    presence = await untilAborted(startWorkerPresence({ databaseUrl, leaseMs: config.runner.leaseMs, sessionTag, timeouts }), signal);
    listener = await untilAborted(startListener(databaseUrl, `${sessionTag}:listener`, timeouts), signal);
    // The listener reconnected: the database is back, so a lost worker session is reopened now.
    listener.onReconnect(presence.retryNow);
    hub = createLiveHub({
      pool,
      listener,
      recheckIntervalMs: config.live.recheckMs,
      maxWatches: config.live.maxSubscriptions,
      maxWatchesPerTenant: config.live.maxSubscriptionsPerTenant,
    });

    const schema = buildSchema();
    const liveHub = hub;
    const databasePool = pool;
    metrics.observe({
      jobCounts: (timeoutMs) => countUnfinishedJobs(databasePool, timeoutMs),
      runningHere: () => runner?.runningCount() ?? 0,
      slots: config.runner.concurrency,
      subscriptions: () => liveHub.activeWatches(),
      pool: () => databasePool.state(),
      timeoutMs: 2000,
    });
    // Each operation acts for one tenant: its use cases see only that tenant's jobs.
    const contextFor = (tenant: string, lastEventId: string | null): GraphQLContext => {
      const jobs = createJobService(databasePool, tenant, metrics);
      return { jobs, live: createLiveService(jobs, liveHub), lastEventId };
    };
    const auth = createAuthenticator(config.auth.apiKeys);
    if (!auth.required && !config.runner.workerOnly) {
      logger.warn('API_KEYS is not set: open single-tenant mode, no authentication; do not expose this port', { host: config.http.host });
    }
    // Migrations and recovery are done before any port opens, so readiness is: not stopping, the database
    // answers, and the runner (when this process runs jobs) has its session and can claim.
    const ready = async () => {
      if (stopping) return 'the process is shutting down';
      const reasons = [(await pingDatabase(databasePool, 1000)) ? null : 'the database does not answer', runner?.notReadyReason() ?? null];
      return reasons.filter((reason) => reason !== null).join('; ') || null;
    };
    if (auth.required && config.http.metricsPort === null && !config.runner.workerOnly) {
      logger.warn('API_KEYS is set and METRICS_PORT is not: /metrics is served nowhere (with API keys it is on METRICS_PORT only)');
    }
    if (config.http.metricsPort !== null) {
      probes = await startProbeServer({ notReadyReason: ready, metrics, host: config.http.host, port: config.http.metricsPort });
      logger.info('serving /healthz, /readyz and /metrics', { url: probes.url });
    }
    if (!config.runner.workerOnly) {
      web = await startHttpFrontend({
        notReadyReason: ready,
        metrics,
        schema,
        contextFor,
        auth,
        rateLimiter: createRateLimiter(config.limits.rateLimit),
        maxConnectionsPerTenant: config.limits.maxConnectionsPerTenant,
        graphiql: config.http.graphiql,
        introspection: config.http.introspection,
        maxBodyBytes: config.limits.maxBodyBytes,
        maxDocumentBytes: config.limits.maxDocumentBytes,
        origins: createOriginPolicy({
          corsOrigins: config.http.corsOrigins,
          allowedHosts: config.http.allowedHosts,
          openMode: !auth.required,
          bindHost: config.http.host,
        }),
        host: config.http.host,
        port: config.http.port,
      });
    }
    // The runner starts once the port is ours: a start that fails (port taken) must not have claimed jobs.
    if (config.runner.concurrency > 0) {
      runner = await untilAborted(
        startRunner({
          pool,
          presence,
          concurrency: config.runner.concurrency,
          pollIntervalMs: config.runner.pollIntervalMs,
          retryBackoffMs: config.runner.retryBackoffMs,
          abortGraceMs: config.runner.abortGraceMs,
          onJobChanged: listener.onChange,
          onDatabaseBack: listener.onReconnect,
          metrics,
        }),
        signal,
      );
    }
    const url = web?.url ?? null;
    if (url) logger.info('listening', { url: `${url}/graphql`, workerConcurrency: config.runner.concurrency });
    else logger.info('running jobs only: no HTTP port (WORKER_ONLY)', { workerConcurrency: config.runner.concurrency });

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
        await runner?.stop(config.runner.shutdownGraceMs);
        // After the runner has ended its jobs: deregisters this process and releases its lock.
        await presence?.close();
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
    await presence?.close().catch(() => {});
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
