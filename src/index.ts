// The package's public API: what `import … from 'jobql'` gets. Everything else under src/ is internal.
import { startApp } from './app.ts';
import { type JobqlSettings, loadConfig } from './config.ts';
import { DEFAULT_TENANT } from './http/auth.ts';
import type { Job, JsonValue } from './jobs/job.ts';
import { demoKinds as builtInDemoKinds } from './kinds/demo.ts';
import type { JobKind } from './kinds/kind.ts';
import { setLogFormat, setLogLevel } from './logger.ts';

export { ConfigError, type JobqlSettings } from './config.ts';
export { type ErrorCode, JobqlError } from './jobs/errors.ts';
export type { Job, JobStatus, JsonValue } from './jobs/job.ts';
export { type DefinedKind, defineKind, isKind, type JobContext, JobFailure, type JobKind, type KindSchedule } from './kinds/kind.ts';
export { KindDefinitionError } from './kinds/registry.ts';

export type JobqlOptions = JobqlSettings & {
  /** The kinds this process knows: the only ones its API accepts and its runner claims. */
  kinds?: readonly JobKind[];
  /** Also run the built-in demo kinds (echo, sleep, fail, flaky), as `npm start` in jobql's repository does. */
  demoKinds?: boolean;
  /** false: run jobs and open no HTTP port (a worker-only process; the same as `workerOnly: true`). */
  http?: boolean;
  /** Where settings not given as options are read from; process.env by default. */
  env?: Record<string, string | undefined>;
  /** Aborts the start: the waits on the database end at once and what was started is stopped. */
  signal?: AbortSignal;
};

/** What createJob takes besides the kind and its input; a job's own value wins over its kind's policy. */
export type CreateJobOptions = {
  idempotencyKey?: string;
  /** When the job may run first, as an ISO 8601 date-time. */
  runAt?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  /** The tenant the job belongs to; `default` (open mode's tenant) when absent. */
  tenant?: string;
};

export type Jobql = {
  /** http://host:port of the API (GraphQL at /graphql); null with `http: false`. */
  url: string | null;
  /** http://host:port of the probes-and-metrics server (metricsPort); null when not set. */
  metricsUrl: string | null;
  /**
   * Creates a job with the same checks as the API's createJob (the kind must be one of this process's, its
   * input must match the kind's schema): a failed check throws a JobqlError with code BAD_USER_INPUT.
   */
  createJob: (kind: string, input?: unknown, options?: CreateJobOptions) => Promise<Job>;
  /** The job with this id, or null (of the `default` tenant unless one is given). */
  getJob: (id: string, options?: { tenant?: string }) => Promise<Job | null>;
  /** Stops gracefully: the API stops accepting, running jobs get shutdownGraceMs to finish; resolves when all is stopped. */
  stop: () => Promise<void>;
};

/**
 * Starts jobql in this process: the database (the embedded PostgreSQL without databaseUrl and DATABASE_URL),
 * migrations, the API (unless `http: false`) and the runner for `kinds`. Every setting of the environment is
 * also an option, in camelCase (WORKER_CONCURRENCY → workerConcurrency); options win, the environment is the
 * fallback. A bad setting throws a ConfigError naming the option or variable; a bad kind a KindDefinitionError.
 */
export async function startJobql(options: JobqlOptions = {}): Promise<Jobql> {
  const { kinds = [], demoKinds = false, http = true, env = process.env, signal, ...settings } = options;
  const config = loadConfig(env, http ? settings : { ...settings, workerOnly: true });
  setLogFormat(config.log.format);
  setLogLevel(config.log.level);
  const app = await startApp(config, { kinds: [...(demoKinds ? builtInDemoKinds : []), ...kinds], signal });
  return {
    url: app.url,
    metricsUrl: app.metricsUrl,
    createJob: (kind, input, { tenant = DEFAULT_TENANT, ...rest } = {}) =>
      app.jobsFor(tenant).createJob({ kind, input: input as JsonValue | undefined, ...rest }),
    getJob: (id, { tenant = DEFAULT_TENANT } = {}) => app.jobsFor(tenant).getJob(id),
    stop: app.stop,
  };
}

/** A worker-only process: startJobql with `http: false` (runs jobs of `kinds`, opens no API port). */
export function startWorker(options: Omit<JobqlOptions, 'http'> = {}): Promise<Jobql> {
  return startJobql({ ...options, http: false });
}
