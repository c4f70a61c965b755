import { randomUUID } from 'node:crypto';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import type { KindRegistry } from '../kinds/registry.ts';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { CreateBatcher } from './create-batch.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { badUserInput, JobqlError } from './errors.ts';
import type { Job, JobStatus, JsonValue } from './job.ts';
import {
  countFinishedJobsPerMinute,
  countJobsByKindAndStatus,
  countQueueChangesPerMinute,
  findJobById,
  findJobByIdempotencyKey,
  insertJob,
  type JobEventRow,
  listJobHistory,
  listJobs,
  type NewJob,
  requestCancel,
  requeueFinishedJob,
} from './job-queries.ts';
import { type JobStats, summarizeCounts, type ThroughputBucket, withQueueDepth } from './job-stats.ts';
import { findUnstorableString, MAX_JSON_DEPTH, nestsDeeperThan } from './json-check.ts';

// The use cases the API offers on jobs. Checks every input before any SQL runs, so a bad request costs
// nothing and leaves nothing behind; the SQL itself lives in job-queries.ts.

// Below the default request body limit (1 MiB), so that this check, with its clearer error, is reachable.
export const MAX_INPUT_BYTES = 512 * 1024;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseJobId(id: string, argument = 'id'): string {
  if (!uuidShape.test(id)) throw badUserInput(`${argument} must be a UUID`, { argument });
  return id.toLowerCase();
}

export type JobPage = {
  jobs: readonly Job[];
  cursors: readonly string[];
  hasNextPage: boolean;
};

export type CreateJobRequest = {
  kind: string;
  input?: unknown;
  idempotencyKey?: string | null;
  runAt?: string | null;
  priority?: number | null;
  maxAttempts?: number | null;
  timeoutMs?: number | null;
};

export const MAX_BATCH = 1000;
const MAX_TIMEOUT_MS = 7 * 24 * 3_600_000;

/** Checks one createJob request completely, before any SQL; `argument` prefixes the paths in errors. */
function checkRequest(kinds: KindRegistry, tenant: string, request: CreateJobRequest, argument: string): NewJob {
  const kind = kinds.find(request.kind);
  if (!kind) {
    throw badUserInput(`unknown job kind ${JSON.stringify(request.kind)}; known kinds: ${kinds.names().join(', ')}`, {
      argument: `${argument}.kind`,
      knownKinds: kinds.names(),
    });
  }
  const input = request.input === undefined || request.input === null ? {} : request.input;
  // First, before JSON.stringify or zod recurse into it: see MAX_JSON_DEPTH.
  if (nestsDeeperThan(input, MAX_JSON_DEPTH)) {
    throw badUserInput(`input is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`, {
      argument: `${argument}.input`,
      maxDepth: MAX_JSON_DEPTH,
    });
  }
  const size = Buffer.byteLength(JSON.stringify(input), 'utf8');
  if (size > MAX_INPUT_BYTES) {
    throw badUserInput(`input is ${size} bytes; at most ${MAX_INPUT_BYTES} are accepted`, { argument: `${argument}.input` });
  }
  const unstorable = findUnstorableString(input);
  if (unstorable) {
    throw badUserInput('input contains a NUL character or an unpaired surrogate, which cannot be stored', {
      argument: `${argument}.input`,
      path: unstorable,
    });
  }
  const checked = kind.input.safeParse(input);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const path = issue?.path.map(String) ?? [];
    throw badUserInput(
      `input does not match kind ${kind.name}: ${path.length ? `at ${path.join('.')}: ` : ''}${issue?.message ?? 'invalid'}`,
      {
        argument: `${argument}.input`,
        path,
        issues: checked.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
      },
    );
  }
  const whole = (name: string, value: number | null | undefined, min: number, max: number, fallback: number | null) => {
    if (value === null || value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw badUserInput(`${name} must be a whole number from ${min} to ${max}`, { argument: `${argument}.${name}` });
    }
    return value;
  };
  const key = request.idempotencyKey ?? null;
  if (key !== null && (key.length < 1 || key.length > 200 || findUnstorableString(key))) {
    throw badUserInput('idempotencyKey must be 1 to 200 characters of text', { argument: `${argument}.idempotencyKey` });
  }
  return {
    id: randomUUID(),
    tenant,
    kind: kind.name,
    // The client's input is stored as sent (it was checked above); handlers get the parsed value.
    input: input as JsonValue,
    // The kind's policies are the defaults; the job's own values win. Stored on the row, so that every process
    // (recovery included) reads the same values, whichever kinds it knows.
    maxAttempts: whole('maxAttempts', request.maxAttempts, 1, 100, kind.maxAttempts ?? 1) as number,
    priority: whole('priority', request.priority, -1000, 1000, 0) as number,
    timeoutMs: whole('timeoutMs', request.timeoutMs, 1, MAX_TIMEOUT_MS, kind.timeoutMs ?? null),
    runAt: request.runAt ?? null,
    idempotencyKey: key,
  };
}

/**
 * Inserts a checked job (by `insert`: createJob's group commit, or one statement in `db`, createJobs's
 * transaction); with an idempotency key already taken, returns the job that holds it, or fails with
 * CONFLICT when that job was created with another kind or input (AIP-155: same request, same answer).
 */
async function insertIdempotently(
  db: CommonQueryMethods,
  job: NewJob,
  insert: (job: NewJob) => Promise<Job | null> = (one) => insertJob(db, one),
): Promise<Inserted> {
  const inserted = await insert(job);
  if (inserted) return { job: inserted, inserted: true };
  const existing = await findJobByIdempotencyKey(db, job);
  if (!existing) throw new Error('idempotency key conflict without a holder');
  if (!existing.sameRequest) {
    throw new JobqlError('CONFLICT', 'this idempotencyKey was used for a job with another kind or input', {
      argument: 'idempotencyKey',
      jobId: existing.job.id,
    });
  }
  return { job: existing.job, inserted: false };
}

type Inserted = { job: Job; inserted: boolean };

/** Counts and logs the jobs a request created; called once the rows are committed (a rolled-back batch created nothing). */
function recordCreatedJobs(metrics: Pick<Metrics, 'jobsCreated'>, outcomes: readonly Inserted[]): void {
  const created = outcomes.filter((outcome) => outcome.inserted).map((outcome) => outcome.job);
  metrics.jobsCreated(created.map((job) => job.kind));
  for (const job of created) {
    logger.info('job created', { jobId: job.id, kind: job.kind, tenant: job.tenant });
    logger.debug('job input', { jobId: job.id, input: job.input });
  }
}

/** A client error raised by one item of a batch names the item (`extensions.index`). */
function tagIndex(error: unknown, index: number): unknown {
  if (error instanceof JobqlError) error.details.index = index;
  return error;
}

function wrongStatus(job: Job, rule: string): JobqlError {
  const status = job.status.toUpperCase();
  return new JobqlError('CONFLICT', `the job is ${status}; ${rule}`, { argument: 'id', status });
}

type PageArgs = { first?: number | null; after?: string | null; statuses?: readonly JobStatus[] | null; kind?: string | null };

/** One page of a tenant's jobs, newest first, keyset-paged by cursor. */
async function listPage(pool: DatabasePool, tenant: string, args: PageArgs): Promise<JobPage> {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badUserInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
  }
  const after = args.after == null ? null : decodeCursor(args.after);
  const statuses = args.statuses && args.statuses.length > 0 ? args.statuses : null;
  const rows = await listJobs(pool, { tenant, statuses, kind: args.kind ?? null, after, limit: first });
  const jobs = rows.slice(0, first);
  return { jobs, cursors: jobs.map(encodeCursor), hasNextPage: rows.length > first };
}

/** The longest window jobStats and jobThroughput look back over: a day of minutes. */
export const MAX_WINDOW_MINUTES = 1440;
export const DEFAULT_WINDOW_MINUTES = 60;
export const DEFAULT_HISTORY_PAGE = 50;

function windowMinutes(value: number | null | undefined, argument: string): number {
  const minutes = value ?? DEFAULT_WINDOW_MINUTES;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_WINDOW_MINUTES) {
    throw badUserInput(`${argument} must be a whole number from 1 to ${MAX_WINDOW_MINUTES}`, { argument });
  }
  return minutes;
}

export type JobHistory = { events: readonly JobEventRow[]; hasNextPage: boolean; startsAtRevision: number | null };

/** One page of a job's revisions from the event log, oldest first; an empty page for another tenant's job. */
async function historyPage(
  pool: DatabasePool,
  tenant: string,
  id: string,
  args: { first?: number | null; afterRevision?: number | null },
): Promise<JobHistory> {
  const first = args.first ?? DEFAULT_HISTORY_PAGE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badUserInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
  }
  const after = args.afterRevision ?? 0;
  if (!Number.isInteger(after) || after < 0) {
    throw badUserInput('afterRevision must be a whole number of at least 0', { argument: 'afterRevision' });
  }
  const read = await listJobHistory(pool, tenant, parseJobId(id), after, first);
  if (!read) return { events: [], hasNextPage: false, startsAtRevision: null };
  return { events: read.events.slice(0, first), hasNextPage: read.events.length > first, startsAtRevision: read.firstRevision };
}

/**
 * The use cases for one tenant: it sees, creates and changes only its own jobs. `metrics` counts the jobs it
 * creates, the ones it ends (a queued job cancelled) and the ones it puts back in the queue (retryJob).
 * `creates` is the process's one create batcher (create-batch.ts), shared by every tenant's service.
 */
export function createJobService(
  pool: DatabasePool,
  tenant: string,
  metrics: Pick<Metrics, 'jobsCreated' | 'jobsEnded' | 'jobResubmitted'>,
  kinds: KindRegistry,
  creates: CreateBatcher,
) {
  const recordCreated = (outcomes: readonly Inserted[]) => recordCreatedJobs(metrics, outcomes);

  const findOrFail = async (id: string) => {
    const job = await findJobById(pool, tenant, parseJobId(id));
    if (!job) throw new JobqlError('NOT_FOUND', `no job with id ${id}`, { argument: 'id' });
    return job;
  };

  return {
    tenant,
    parseId: (id: string) => parseJobId(id),
    /** The kinds this server runs, with their input's JSON Schema and policies: the same for every tenant. */
    listKinds: kinds.list,

    async createJob(request: CreateJobRequest): Promise<Job> {
      // Group commit: inserted together with the creates that arrive while another insert is in flight.
      const outcome = await insertIdempotently(pool, checkRequest(kinds, tenant, request, 'input'), creates.insert);
      recordCreated([outcome]);
      return outcome.job;
    },

    /**
     * All or none, in one transaction; a bad item fails the batch with its index. Returned in order. Not through
     * the create batcher: its rows must commit or roll back together, in this request's own transaction.
     */
    async createJobs(requests: readonly CreateJobRequest[]): Promise<Job[]> {
      if (requests.length < 1 || requests.length > MAX_BATCH) {
        throw badUserInput(`inputs must hold 1 to ${MAX_BATCH} jobs`, { argument: 'inputs' });
      }
      const jobs = requests.map((request, index) => {
        try {
          return checkRequest(kinds, tenant, request, `inputs.${index}`);
        } catch (error) {
          throw tagIndex(error, index);
        }
      });
      const outcomes = await pool.transaction(async (tx) => {
        const created: Inserted[] = [];
        for (const [index, job] of jobs.entries()) {
          created.push(
            await insertIdempotently(tx, job).catch((error: unknown) => {
              throw tagIndex(error, index);
            }),
          );
        }
        return created;
      });
      recordCreated(outcomes);
      return outcomes.map((outcome) => outcome.job);
    },

    /** Cancels a queued job at once, asks a running one to stop; a cancelled one is returned unchanged. */
    async cancelJob(id: string): Promise<Job> {
      const requested = await requestCancel(pool, tenant, parseJobId(id));
      if (requested?.status === 'cancelled') {
        metrics.jobsEnded([requested]);
        logger.info('job cancelled', { jobId: requested.id, kind: requested.kind });
      } else if (requested) logger.info('job cancel requested', { jobId: requested.id, kind: requested.kind });
      if (requested) return requested;
      const job = await findOrFail(id);
      if (job.status === 'cancelled') return job;
      throw wrongStatus(job, 'only a QUEUED or RUNNING job can be cancelled');
    },

    /** Puts a FAILED or CANCELLED job back in the queue as a new attempt. */
    async retryJob(id: string): Promise<Job> {
      const requeued = await requeueFinishedJob(pool, tenant, parseJobId(id));
      if (requeued) {
        metrics.jobResubmitted(requeued.kind);
        logger.info('job queued again by retryJob', { jobId: requeued.id, kind: requeued.kind, attempt: requeued.attempt });
        return requeued;
      }
      const job = await findOrFail(id);
      throw wrongStatus(job, 'only a FAILED or CANCELLED job can be retried');
    },

    async getJob(id: string): Promise<Job | null> {
      return findJobById(pool, tenant, parseJobId(id));
    },

    listJobs: (args: PageArgs): Promise<JobPage> => listPage(pool, tenant, args),

    /** Counts per status and per (kind, status): all unfinished jobs, and the ones finished in the window. */
    async jobStats(finishedWithinMinutes?: number | null): Promise<JobStats> {
      const minutes = windowMinutes(finishedWithinMinutes, 'finishedWithinMinutes');
      return summarizeCounts(await countJobsByKindAndStatus(pool, tenant, minutes), minutes);
    },

    /**
     * Jobs finished per minute by status, and the queue depth at each minute's end, for the last `minutes`.
     * Both statements run in one transaction, so that now() (which places the minutes) is the same for both.
     */
    async jobThroughput(minutes?: number | null): Promise<ThroughputBucket[]> {
      const count = windowMinutes(minutes, 'minutes');
      return pool.transaction(async (tx) => {
        const buckets = await countFinishedJobsPerMinute(tx, tenant, count);
        return withQueueDepth(buckets, await countQueueChangesPerMinute(tx, tenant, count));
      });
    },

    history: (id: string, args: { first?: number | null; afterRevision?: number | null }): Promise<JobHistory> =>
      historyPage(pool, tenant, id, args),
  };
}

export type JobService = ReturnType<typeof createJobService>;
