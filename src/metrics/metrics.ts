import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { terminalStatuses } from '../jobs/job.ts';

// The process's Prometheus metrics, served at GET /metrics. A leaf module: the API, the runner and the
// maintenance loop record into it; nothing here reads the database itself (the database-wide gauges are
// filled at scrape time by the reader app.ts gives it). One registry per app, so two apps in one process
// (the tests) keep their own counts.
//
// Counters and histograms count what THIS process did: sum them over processes. The database-wide gauges
// (jobql_jobs_*) read the same table from every process: take max() over processes, not sum().

/** Jobs by the state that matters to an operator, read from the database at scrape time. */
export type JobCounts = {
  queued: number;
  scheduled: number;
  running: number;
  oldestQueuedAgeSeconds: number;
  /** Due queued jobs whose kind no live process runs (workers.kinds): they wait for a process that knows it. */
  queuedUnknownKind: number;
};

/** What a job transition looks like to the metrics: its kind, and the status it ended in. */
type Transition = { kind: string; status: string; errorCode?: string | null };

// Label values that handlers choose (error codes) are capped, so that no one can grow the number of series
// without bound; past the cap a value is counted as "other". Operations are labelled from a fixed set (the
// schema's root fields; see operation-metrics.ts), never by the names clients give them.
function boundedLabel(max: number) {
  const seen = new Set<string>();
  return (value: string) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}

const MAX_ERROR_CODES = 50;
const finalStatuses = new Set<string>(terminalStatuses);

// prom-client's process metrics (CPU, memory, event-loop lag, GC) describe the process, not an app, and their
// collectors cannot be stopped: one registry for them per process, started once, shared by every app in it.
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

type Registers = Registry[];

/** What the runner, the job service, cancel, shutdown and recovery record: one series set per kind. */
function jobMetrics(registers: Registers) {
  const created = new Counter({
    name: 'jobql_jobs_created_total',
    help: 'Jobs created through this process (idempotent replays of an existing job are not counted).',
    labelNames: ['kind'],
    registers,
  });
  const started = new Counter({
    name: 'jobql_job_attempts_started_total',
    help: 'Attempts this process started (one per claim; a retried job counts once per attempt).',
    labelNames: ['kind'],
    registers,
  });
  const failedAttempts = new Counter({
    name: 'jobql_job_attempts_failed_total',
    help: 'Attempts that ended in an error, by error code, whether or not the job is retried.',
    labelNames: ['kind', 'code'],
    registers,
  });
  const finished = new Counter({
    name: 'jobql_jobs_finished_total',
    help: 'Jobs this process moved to a final status: completed, failed or cancelled (also by cancelJob, shutdown and recovery).',
    labelNames: ['kind', 'status'],
    registers,
  });
  const retried = new Counter({
    name: 'jobql_jobs_requeued_total',
    help: 'Failed attempts this process put back in the queue for another attempt.',
    labelNames: ['kind'],
    registers,
  });
  const resubmitted = new Counter({
    name: 'jobql_jobs_resubmitted_total',
    help: 'FAILED or CANCELLED jobs put back in the queue by retryJob (they can then finish again).',
    labelNames: ['kind'],
    registers,
  });
  const runTime = new Histogram({
    name: 'jobql_job_run_seconds',
    help: "Run time of an attempt on this process, from claim to the handler's end.",
    labelNames: ['kind'],
    buckets: [0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 60, 300, 1800],
    registers,
  });
  const pickup = new Histogram({
    name: 'jobql_job_pickup_seconds',
    help: 'Time from when a job was due (created, runAt, or retry time) until a runner of this process claimed it.',
    labelNames: ['kind'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300],
    registers,
  });
  const claims = new Counter({
    name: 'jobql_runner_claims_total',
    help: 'Claim statements this process ran. Each follows a wake-up (a notification, a finished job, the poll); a kind at its concurrency limit is not claimed for.',
    registers,
  });
  const completionWrites = new Counter({
    name: 'jobql_runner_completion_writes_total',
    help: "Statements that wrote successful attempts' ends. Jobs finishing while one is in flight share the next one (group commit), so this grows slower than completed jobs under load.",
    registers,
  });
  const createWrites = new Counter({
    name: 'jobql_create_writes_total',
    help: 'Insert statements of createJob (the API and the library) that succeeded, one per batch or lone job. Creates arriving while one is in flight share the next one (group commit), so this grows slower than created jobs under load.',
    registers,
  });
  return { created, started, failedAttempts, finished, retried, resubmitted, runTime, pickup, claims, completionWrites, createWrites };
}

/** What the GraphQL and HTTP layers record. */
function apiMetrics(registers: Registers) {
  const operations = new Counter({
    name: 'jobql_graphql_operations_total',
    help: 'GraphQL operations by the root field they select (createJob, job, …; "introspection", "other", or "invalid" for documents that failed to parse or validate), type and outcome (ok, client_error, internal_error).',
    labelNames: ['operation', 'type', 'outcome'],
    registers,
  });
  const operationTime = new Histogram({
    name: 'jobql_graphql_operation_seconds',
    help: 'Execution time of queries and mutations (subscriptions are long-lived and not timed).',
    labelNames: ['type'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers,
  });
  const httpRequests = new Counter({
    name: 'jobql_http_requests_total',
    help: 'HTTP requests by route and status code, counted when they end (SSE streams too); "none" when the client left before any response. WebSocket upgrades are not counted here.',
    labelNames: ['route', 'status'],
    registers,
  });
  return { operations, operationTime, httpRequests };
}

/** What the gauges read at scrape time (see `observe`). */
export type GaugeSources = {
  /** Must end by itself within about `timeoutMs` (a statement timeout), so it never holds a connection long. */
  jobCounts: (timeoutMs: number) => Promise<JobCounts>;
  runningHere: () => number;
  slots: number;
  subscriptions: () => number;
  pool: () => { acquiredConnections: number; idleConnections: number; waitingClients: number };
  timeoutMs: number;
};

/** The jobql_jobs_* gauges: database-wide, read once per scrape. */
function databaseGauges(registers: Registers, sources: GaugeSources): void {
  // prom-client collects all metrics of a scrape at once: the database-wide gauges share one read
  // per scrape. A failed or late read reports NaN ("unknown") rather than a stale or made-up count:
  // alerts on these gauges do not fire on it, and the scrape itself still succeeds.
  // At most one count query runs at a time: a scrape that comes while one runs waits for it (up to the
  // bound) instead of taking another pool connection the API and the runner need.
  let query: Promise<JobCounts> | null = null;
  const readCounts = () => {
    query ??= sources.jobCounts(sources.timeoutMs).finally(() => {
      query = null;
    });
    return withTimeout(query, sources.timeoutMs).catch(() => null);
  };
  const databaseGauge = (name: string, help: string, pick: (counts: JobCounts) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const counts = await readCounts();
        this.set(counts ? pick(counts) : Number.NaN);
      },
    });
  databaseGauge('jobql_jobs_queued', 'Queued jobs that are due now (database-wide).', (counts) => counts.queued);
  databaseGauge(
    'jobql_jobs_scheduled',
    'Queued jobs due later: runAt in the future or waiting out a retry backoff (database-wide).',
    (counts) => counts.scheduled,
  );
  databaseGauge('jobql_jobs_running', 'Running jobs on all processes (database-wide).', (counts) => counts.running);
  databaseGauge(
    'jobql_jobs_queued_oldest_age_seconds',
    'How long the oldest due queued job has waited (database-wide); 0 when none waits.',
    (counts) => counts.oldestQueuedAgeSeconds,
  );
  databaseGauge(
    'jobql_jobs_queued_unknown_kind',
    'Due queued jobs whose kind no live process runs: they stay queued until a process with that kind starts (database-wide).',
    (counts) => counts.queuedUnknownKind,
  );
}

/** The gauges of this process: its runner, its subscriptions, its pool. */
function processGauges(registers: Registers, sources: GaugeSources): void {
  new Gauge({
    name: 'jobql_runner_jobs_running',
    help: 'Jobs running on this process.',
    registers,
    collect() {
      this.set(sources.runningHere());
    },
  });
  new Gauge({ name: 'jobql_runner_slots', help: 'Jobs this process runs at most at once (WORKER_CONCURRENCY).', registers }).set(
    sources.slots,
  );
  new Gauge({
    name: 'jobql_subscriptions_active',
    help: 'Live subscriptions (jobUpdated, jobsUpdated, awaitJob) open on this process.',
    registers,
    collect() {
      this.set(sources.subscriptions());
    },
  });
  new Gauge({
    name: 'jobql_db_pool_connections',
    help: "The database pool's connections by state (in use, idle) and callers waiting for one.",
    labelNames: ['state'],
    registers,
    collect() {
      const state = sources.pool();
      this.set({ state: 'in_use' }, state.acquiredConnections);
      this.set({ state: 'idle' }, state.idleConnections);
      this.set({ state: 'waiting' }, state.waitingClients);
    },
  });
}

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  const errorCode = boundedLabel(MAX_ERROR_CODES);
  const { created, started, failedAttempts, finished, retried, resubmitted, runTime, pickup, claims, completionWrites, createWrites } =
    jobMetrics(registers);
  const { operations, operationTime, httpRequests } = apiMetrics(registers);

  /** Attempts ended by a statement (runner, cancel, shutdown, recovery): counted by where they ended up. */
  function jobsEnded(transitions: readonly Transition[]): void {
    for (const { kind, status, errorCode: code } of transitions) {
      if (code && (status === 'failed' || status === 'queued')) failedAttempts.inc({ kind, code: errorCode(code) });
      if (finalStatuses.has(status)) finished.inc({ kind, status });
      else if (status === 'queued') retried.inc({ kind });
    }
  }

  return {
    /** The Prometheus text of this app's metrics and the process's. */
    text: async () => `${await processMetrics().metrics()}\n${await registry.metrics()}`,
    contentType: registry.contentType,
    jobsEnded,

    jobResubmitted(kind: string): void {
      resubmitted.inc({ kind });
    },

    jobsCreated(kinds: readonly string[]): void {
      for (const kind of kinds) created.inc({ kind });
    },

    /** The runner ran a claim statement (whatever it returned). */
    claimRan(): void {
      claims.inc();
    },

    /** The runner wrote `jobs` successful ends in one statement (whatever the claim guards let through). */
    completionWritten(jobs: number): void {
      if (jobs > 0) completionWrites.inc();
    },

    /** createJob inserted `jobs` jobs in one statement (idempotent replays among them too). */
    createWritten(jobs: number): void {
      if (jobs > 0) createWrites.inc();
    },

    /** A claimed attempt; `runAt` and `startedAt` are the row's run_at and started_at. */
    attemptStarted(job: { kind: string; runAt: string; startedAt: string | null }): void {
      started.inc({ kind: job.kind });
      if (job.startedAt) pickup.observe({ kind: job.kind }, Math.max(0, Date.parse(job.startedAt) - Date.parse(job.runAt)) / 1000);
    },

    /** An attempt this process ran has ended: how long it ran, and what it ended as. */
    attemptEnded(kind: string, seconds: number, ended: Transition | null): void {
      runTime.observe({ kind }, seconds);
      if (ended) jobsEnded([ended]);
    },

    /**
     * `label`: the operation's root field, "introspection" or "other" (operation-metrics.ts); operations that
     * failed to parse or validate are all counted as "invalid".
     */
    graphqlOperation(label: string, type: string, outcome: 'ok' | 'client_error' | 'internal_error' | 'invalid', seconds?: number): void {
      const operation = outcome === 'invalid' ? 'invalid' : label;
      operations.inc({ operation, type, outcome: outcome === 'invalid' ? 'client_error' : outcome });
      if (seconds !== undefined) operationTime.observe({ type }, seconds);
    },

    /** `status` 'none': the client went away before any response was sent. */
    httpRequest(route: string, status: number | 'none'): void {
      httpRequests.inc({ route, status: String(status) });
    },

    /**
     * The gauges read at scrape time. `jobCounts` reads the database: it is bounded by `timeoutMs`, and when it
     * fails or is late the jobql_jobs_* gauges are NaN in that scrape.
     */
    observe(sources: GaugeSources): void {
      databaseGauges(registers, sources);
      processGauges(registers, sources);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
