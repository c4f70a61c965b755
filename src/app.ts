import type { Config } from './config.ts';
import { redactDatabaseUrl, untilAborted, waitForDatabase, withApplicationName } from './db/database.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { runMigrations } from './db/migrate.ts';
import { createDatabasePool, type DatabasePool, pingDatabase } from './db/pool.ts';
import type { GraphQLContext } from './graphql/context.ts';
import { buildSchema } from './graphql/schema.ts';
import { createAuthenticator } from './http/auth.ts';
import { type HttpFrontend, startHttpFrontend, startProbeServer } from './http/frontend.ts';
import { createOriginPolicy } from './http/origin.ts';
import { createRateLimiter } from './http/rate-limit.ts';
import { type CreateBatcher, createCreateBatcher } from './jobs/create-batch.ts';
import { countUnfinishedJobs } from './jobs/job-queries.ts';
import { createJobService, type JobService } from './jobs/job-service.ts';
import type { JobKind } from './kinds/kind.ts';
import { createKindRegistry, type KindRegistry } from './kinds/registry.ts';
import { createLiveHub, type LiveHub } from './live/live-hub.ts';
import { createLiveService } from './live/live-service.ts';
import { logger } from './logger.ts';
import { startCronScheduler } from './maintenance/cron-scheduler.ts';
import { startEventLogPruning } from './maintenance/event-log-pruning.ts';
import { startJobRetention } from './maintenance/job-retention.ts';
import { recoverDeadWorkers, startWorkerRecovery } from './maintenance/worker-recovery.ts';
import { createMetrics, type Metrics } from './metrics/metrics.ts';
import { type Listener, startListener } from './notify/listener.ts';
import { type Runner, startRunner } from './runner/runner.ts';
import { newSessionTag, startWorkerPresence, type WorkerPresence } from './runner/worker-session.ts';
import { createStopList, type StopList } from './stop-list.ts';

export type App = {
  /** http://host:port of the running server; null in worker-only mode. */
  url: string | null;
  /** http://host:port of the probes-and-metrics server (METRICS_PORT); null when not set. */
  metricsUrl: string | null;
  databaseUrl: string;
  /** The use cases for one tenant, with this app's kinds: what the API calls, for code in the same process. */
  jobsFor: (tenant: string) => JobService;
  stop: () => Promise<void>;
};

export type StartOptions = {
  /** The kinds this process knows: the only ones its API accepts and its runner claims. */
  kinds: readonly JobKind[];
  /** Aborts startup (SIGTERM while starting): the waits on the database end at once. */
  signal?: AbortSignal;
};

type Options = { signal?: AbortSignal; kinds: KindRegistry };

/**
 * Starts everything in the order the promise to clients needs: database, migrations, recovery of jobs
 * whose process died, and only then the schema and the HTTP port, so no client ever sees a job reported
 * running by a process that is gone; the runner last. Used by `jobql start` (cli/start-command.ts), by startJobql
 * (index.ts) and by the in-process tests.
 *
 * Each part is added to one stop list as it starts; a graceful stop and a failed start both walk it in
 * reverse, so the teardown is written once. The resulting stop order: stop accepting connections; the
 * runner finishes or interrupts its jobs (it needs the pool, and subscribers should see those final states);
 * live streams end cleanly (final states, then WebSockets close with 1001); the remaining HTTP connections
 * and the probe server; the listener; the worker presence (after the runner: it deregisters this process
 * and releases its lock); upkeep; queued job creates are written; the pool; the embedded database last.
 */
export async function startApp(config: Config, start: StartOptions): Promise<App> {
  // Checked before anything starts: a bad kind (a duplicate name) is a startup error, not a half-started app.
  const options: Options = { signal: start.signal, kinds: createKindRegistry(start.kinds) };
  const parts = createStopList();
  const metrics = createMetrics();
  try {
    const { databaseUrl, pool, sessionTag } = await startDatabase(config, options, parts);
    // Added right after the pool, so that it stops right before it: by then the HTTP frontend has let its
    // requests finish, and any create still queued (a library call, a request cut off past the drain) is
    // written, or fails, while the pool is still open; later creates are refused.
    const creates = createCreateBatcher(pool, metrics.createWritten);
    parts.add('job creates: queued inserts are written', () => creates.close());
    await startUpkeep(config, options, parts, { pool, metrics });
    const { presence, listener } = await startSession(config, options, parts, { databaseUrl, sessionTag });
    // A worker-only process serves no live status: it builds no hub (its runner is woken by the listener).
    const hub = config.runner.workerOnly ? null : startHub(config, { pool, listener });
    // Reserved here, before the hub's own entry, so that both close after the hub: streams get their final
    // states before WebSockets close, and readiness is answered until then. Both start further down.
    const probesPlace = parts.reserve('probe server: close');
    const webPlace = parts.reserve('HTTP frontend: close (in-flight requests finish)');
    if (hub) parts.add('live status: final states, streams end', () => hub.close());
    const state = { stopping: false, runner: null as Runner | null };
    metrics.observe({
      jobCounts: (timeoutMs) => countUnfinishedJobs(pool, timeoutMs),
      runningHere: () => state.runner?.runningCount() ?? 0,
      slots: config.runner.concurrency,
      subscriptions: () => hub?.activeWatches() ?? 0,
      pool: () => pool.state(),
      timeoutMs: 2000,
    });
    // Migrations and recovery are done before any port opens, so readiness is: not stopping, the database
    // answers, and the runner (when this process runs jobs) has its session and can claim.
    const ready = async () => {
      if (state.stopping) return 'the process is shutting down';
      const reasons = [(await pingDatabase(pool, 1000)) ? null : 'the database does not answer', state.runner?.notReadyReason() ?? null];
      return reasons.filter((reason) => reason !== null).join('; ') || null;
    };
    const probes = await startProbes(config, metrics, ready);
    if (probes) probesPlace.fill(() => probes.close());
    const web = hub ? await startWeb(config, { pool, hub, metrics, ready, kinds: options.kinds, creates }) : null;
    if (web) webPlace.fill(() => web.close());
    // The runner starts once the port is ours: a start that fails (port taken) must not have claimed jobs.
    state.runner = await startJobRunner(config, options, parts, { pool, presence, listener, metrics });
    // Added last so that it runs first: new connections are refused and readiness fails before the runner's
    // grace period begins; the frontend itself closes later (its reserved place above).
    parts.add('stop accepting', () => {
      state.stopping = true;
      web?.stopAccepting();
    });
    const url = web?.url ?? null;
    if (url) logger.info('listening', { url: `${url}/graphql`, workerConcurrency: config.runner.concurrency });
    else logger.info('running jobs only: no HTTP port (WORKER_ONLY)', { workerConcurrency: config.runner.concurrency });
    let stopped: Promise<void> | null = null;
    const stop = () => {
      stopped ??= (async () => {
        logger.info('stopping');
        await parts.stopAll();
        logger.info('stopped');
      })();
      return stopped;
    };
    const jobsFor = (tenant: string) => createJobService(pool, tenant, metrics, options.kinds, creates);
    return { url, metricsUrl: probes?.url ?? null, databaseUrl, jobsFor, stop };
  } catch (error) {
    await parts.stopAll();
    throw error;
  }
}

/** The embedded PostgreSQL when DATABASE_URL is not set, the migrations, and the pool. */
async function startDatabase(config: Config, { signal }: Options, parts: StopList) {
  // `signal` (SIGTERM during startup) abandons the steps that wait on the database at once; the embedded
  // PostgreSQL's own start is not abandoned, so that it is stopped (first in, last out) rather than left running.
  const timeouts = config.database.timeouts;
  let databaseUrl = config.database.url;
  if (!databaseUrl) {
    logger.info('DATABASE_URL is not set: starting the embedded PostgreSQL', { dir: config.database.embeddedDir });
    const embedded = await startEmbeddedPostgres(config.database.embeddedDir, config.database.embeddedPort);
    // Stops after everything else: every connection above is closed by then.
    parts.add('embedded PostgreSQL', () => embedded.stop());
    databaseUrl = embedded.databaseUrl;
  }
  logger.info('using database', { database: redactDatabaseUrl(databaseUrl) });
  await waitForDatabase(databaseUrl, { timeouts, waitMs: config.database.startupTimeoutMs, signal });
  const applied = await untilAborted(runMigrations(databaseUrl, timeouts), signal);
  if (applied.length > 0) logger.info('applied migrations', { migrations: applied });

  // Every connection of this process carries its session tag, so that others can end them all if it stops
  // answering (see worker-session.ts).
  const sessionTag = newSessionTag();
  // Pool: one connection per job slot for finishing and progress writes, plus room for API requests.
  const pool = await untilAborted(
    createDatabasePool(withApplicationName(databaseUrl, `${sessionTag}:pool`), Math.max(10, config.runner.concurrency + 5), timeouts),
    signal,
  );
  parts.add('database pool', () => pool.end());
  return { databaseUrl, pool, sessionTag };
}

/**
 * Upkeep that every process does, API-only ones included, so that no single process is needed. Recovery
 * runs once before any port opens, then on its own timer, as do job retention and event-log pruning; the
 * cron scheduler, in processes that know scheduled kinds, sleeps until the next tick.
 */
async function startUpkeep(config: Config, { signal, kinds }: Options, parts: StopList, deps: { pool: DatabasePool; metrics: Metrics }) {
  const recovery = {
    kindTimeouts: kinds.all().flatMap((kind) => (kind.timeoutMs === undefined ? [] : [{ kind: kind.name, timeoutMs: kind.timeoutMs }])),
    pool: deps.pool,
    leaseMs: config.runner.leaseMs,
    abortGraceMs: config.runner.abortGraceMs,
    retryBackoffMs: config.runner.retryBackoffMs,
    metrics: deps.metrics,
  };
  await untilAborted(recoverDeadWorkers(recovery), signal);
  const workerRecovery = startWorkerRecovery(recovery);
  parts.add('worker recovery', () => workerRecovery.stop());
  const retention = startJobRetention({ pool: deps.pool, retentionMs: config.maintenance.jobRetentionMs });
  parts.add('job retention', () => retention.stop());
  const pruning = startEventLogPruning({ pool: deps.pool, retentionMs: config.maintenance.eventLogRetentionMs });
  parts.add('event-log pruning', () => pruning.stop());
  // Every process that knows a scheduled kind creates its ticks' jobs (worker-only ones too); the database
  // decides which process creates each tick's one job.
  const schedules = kinds.schedules();
  if (schedules.length > 0) {
    const scheduler = startCronScheduler({ pool: deps.pool, schedules, metrics: deps.metrics });
    parts.add('cron scheduler: a pass under way finishes', () => scheduler.stop());
  }
}

/** This process's worker presence and its LISTEN connection. */
async function startSession(
  config: Config,
  { signal, kinds }: Options,
  parts: StopList,
  deps: { databaseUrl: string; sessionTag: string },
) {
  const timeouts = config.database.timeouts;
  // Every process, API-only ones included, proves it answers: a frozen one's listener holds the
  // notification queue for everyone until the others terminate it. Its row names the kinds it runs (none
  // without a runner), which is how the metrics see jobs no live process can run.
  const presence = await untilAborted(
    startWorkerPresence({
      databaseUrl: deps.databaseUrl,
      leaseMs: config.runner.leaseMs,
      sessionTag: deps.sessionTag,
      kinds: config.runner.concurrency > 0 ? kinds.names() : [],
      timeouts,
    }),
    signal,
  );
  // Stops after the runner (added later) has ended its jobs: deregisters this process and releases its lock.
  parts.add('worker presence: deregister, release the lock', () => presence.close());
  const listener = await untilAborted(startListener(deps.databaseUrl, `${deps.sessionTag}:listener`, timeouts), signal);
  parts.add('listener', () => listener.close());
  // The listener reconnected: the database is back, so a lost worker session is reopened now.
  listener.onReconnect(presence.retryNow);
  return { presence, listener };
}

function startHub(config: Config, deps: { pool: DatabasePool; listener: Listener }): LiveHub {
  return createLiveHub({
    pool: deps.pool,
    listener: deps.listener,
    recheckIntervalMs: config.live.recheckMs,
    maxWatches: config.live.maxSubscriptions,
    maxWatchesPerTenant: config.live.maxSubscriptionsPerTenant,
  });
}

async function startProbes(config: Config, metrics: Metrics, ready: () => Promise<string | null>) {
  if (config.http.metricsPort === null) return null;
  const probes = await startProbeServer({ notReadyReason: ready, metrics, host: config.http.host, port: config.http.metricsPort });
  logger.info('serving /healthz, /readyz and /metrics', { url: probes.url });
  return probes;
}

async function startWeb(
  config: Config,
  deps: {
    pool: DatabasePool;
    hub: LiveHub;
    metrics: Metrics;
    ready: () => Promise<string | null>;
    kinds: KindRegistry;
    creates: CreateBatcher;
  },
): Promise<HttpFrontend> {
  const { pool, hub, metrics, kinds, creates } = deps;
  // Each operation acts for one tenant: its use cases see only that tenant's jobs.
  const contextFor = (tenant: string, lastEventId: string | null): GraphQLContext => {
    const jobs = createJobService(pool, tenant, metrics, kinds, creates);
    return { jobs, live: createLiveService(jobs, hub), lastEventId };
  };
  const auth = createAuthenticator(config.auth.apiKeys);
  if (!auth.required) {
    logger.warn('API_KEYS is not set: open single-tenant mode, no authentication; do not expose this port', { host: config.http.host });
  }
  if (auth.required && config.http.metricsPort === null) {
    logger.warn('API_KEYS is set and METRICS_PORT is not: /metrics is served nowhere (with API keys it is on METRICS_PORT only)');
  }
  return startHttpFrontend({
    notReadyReason: deps.ready,
    metrics,
    schema: buildSchema(),
    contextFor,
    auth,
    rateLimiter: createRateLimiter(config.limits.rateLimit),
    maxConnectionsPerTenant: config.limits.maxConnectionsPerTenant,
    graphiql: config.http.graphiql,
    introspection: config.http.introspection,
    dashboard: config.http.dashboard,
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

async function startJobRunner(
  config: Config,
  { signal, kinds }: Options,
  parts: StopList,
  deps: { pool: DatabasePool; presence: WorkerPresence; listener: Listener; metrics: Metrics },
): Promise<Runner | null> {
  if (config.runner.concurrency <= 0) return null;
  const runner = await untilAborted(
    startRunner({
      pool: deps.pool,
      kinds,
      presence: deps.presence,
      concurrency: config.runner.concurrency,
      pollIntervalMs: config.runner.pollIntervalMs,
      retryBackoffMs: config.runner.retryBackoffMs,
      abortGraceMs: config.runner.abortGraceMs,
      onJobChanged: deps.listener.onChange,
      onDatabaseBack: deps.listener.onReconnect,
      metrics: deps.metrics,
    }),
    signal,
  );
  // Nothing after this can fail the start, so this entry only ever runs on a graceful stop: the grace period.
  parts.add('runner: finish or interrupt its jobs', () => runner.stop(config.runner.shutdownGraceMs));
  return runner;
}
