import type { CommonQueryMethods, FragmentSqlToken } from 'slonik';
import { z } from 'zod';
import { sql } from '../db/sql.ts';
import type { JobCursor } from './cursor.ts';
import { FailureCode } from './failure-codes.ts';
import { type Job, type JobStatus, type JsonValue, jobRow, jobStatuses } from './job.ts';

// Every statement on `jobs`, one named function each. Callers pass the pool or a transaction.
// The /* name */ comment on each statement makes it recognisable in pg_stat_activity and in logs.

/** Advisory-lock namespace ('jobq'): the first key of pg_advisory_lock(namespace, worker_id). */
export const WORKER_LOCK_NAMESPACE = 0x6a6f6271;

// One column list for every query that returns jobs. Timestamps as UTC ISO-8601 text with microseconds.
const iso = (column: string) => sql.fragment`to_char(${sql.identifier([column])} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const jobColumns = sql.fragment`
  id, tenant, kind, status, input, result, error, error_code AS "errorCode", progress, attempt, max_attempts AS "maxAttempts",
  priority, timeout_ms AS "timeoutMs", revision, worker_id AS "workerId", idempotency_key AS "idempotencyKey",
  ${iso('created_at')} AS "createdAt", ${iso('updated_at')} AS "updatedAt",
  ${iso('started_at')} AS "startedAt", ${iso('finished_at')} AS "finishedAt",
  ${iso('run_at')} AS "runAt", ${iso('cancel_requested_at')} AS "cancelRequestedAt"`;

// The same shape from job_events (e) joined to jobs (j): the job as it was at that revision.
const isoOf = (table: string, column: string) =>
  sql.fragment`to_char(${sql.identifier([table, column])} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const eventColumns = sql.fragment`
  j.id, j.tenant, j.kind, e.status, j.input, e.result, e.error, e.error_code AS "errorCode", e.progress, e.attempt,
  j.max_attempts AS "maxAttempts", j.priority, j.timeout_ms AS "timeoutMs", e.revision, NULL::integer AS "workerId",
  j.idempotency_key AS "idempotencyKey",
  ${isoOf('j', 'created_at')} AS "createdAt", ${isoOf('e', 'updated_at')} AS "updatedAt",
  ${isoOf('e', 'started_at')} AS "startedAt", ${isoOf('e', 'finished_at')} AS "finishedAt",
  ${isoOf('e', 'run_at')} AS "runAt", ${isoOf('e', 'cancel_requested_at')} AS "cancelRequestedAt"`;

/** A timestamp expression as the API's ISO-8601 UTC text with microseconds (as jobColumns does for columns). */
const isoValue = (value: FragmentSqlToken) => sql.fragment`to_char((${value}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const NOT_RESUMED = 'A job is not resumed: it is retried from the start while it has attempts left.';

/**
 * Why an attempt was interrupted. The stored code is INTERRUPTED for each (clients and metrics act on it);
 * the message says which: a graceful stop past its grace period, a lost worker session (database restart,
 * network cut, or this process judged dead after a freeze), or a process that is gone (crash, SIGKILL),
 * ended by another process's recovery.
 */
export const interruptions = {
  shutdown: {
    code: FailureCode.INTERRUPTED,
    message: `The job was interrupted: the process running it was stopped, and the job did not finish within the grace period. ${NOT_RESUMED}`,
  },
  sessionLost: {
    code: FailureCode.INTERRUPTED,
    message: `The job was interrupted: the process running it lost its database session before the job finished. ${NOT_RESUMED}`,
  },
  processGone: {
    code: FailureCode.INTERRUPTED,
    message: `The job was interrupted: the process running it stopped before the job finished. ${NOT_RESUMED}`,
  },
} as const;
export type Interruption = (typeof interruptions)[keyof typeof interruptions];

export type NewJob = {
  id: string;
  tenant: string;
  kind: string;
  input: JsonValue;
  maxAttempts: number;
  priority: number;
  runAt: string | null;
  timeoutMs: number | null;
  idempotencyKey: string | null;
};

/**
 * Inserts a job, or nothing when its idempotency key is taken: the unique index decides, so two callers
 * racing with one key (on any processes) make one row; the loser gets null and reads the winner's job.
 */
export async function insertJob(db: CommonQueryMethods, job: NewJob): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* insertJob */
    INSERT INTO jobs (id, tenant, kind, input, max_attempts, priority, created_at, run_at, timeout_ms, idempotency_key)
    -- One reading of the clock for both: a job without runAt is due exactly when it was created.
    SELECT ${job.id}, ${job.tenant}, ${job.kind}, ${sql.jsonb(job.input)}, ${job.maxAttempts}, ${job.priority},
      clock.at, coalesce(${job.runAt}::timestamptz, clock.at), ${job.timeoutMs}, ${job.idempotencyKey}
    FROM (SELECT clock_timestamp() AS at) AS clock
    ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING ${jobColumns}`);
}

/**
 * Inserts several jobs in one statement and one commit (the group commit of createJob, create-batch.ts), each
 * row exactly as insertJob writes it; a row whose idempotency key is taken, by an existing job or by an earlier
 * row of the same statement, is skipped (ON CONFLICT DO NOTHING decides for each row in turn) and not returned.
 * Callers match returned rows by id (they chose the ids). Each job gets its revision-1 event; the statement-level
 * trigger (migration 009) announces them all in one NOTIFY (a few for a large batch), delivered at the one commit.
 * Keyed rows go in (tenant, key) order: two such statements from different processes then wait on each other's
 * keys in the same order and cannot deadlock; rows without a key conflict with nothing and keep their queue
 * order. The inputs travel as JSON text (as in completeJobs).
 */
export async function insertJobs(db: CommonQueryMethods, jobs: readonly NewJob[]): Promise<readonly Job[]> {
  if (jobs.length === 0) return [];
  const column = (type: string, pick: (job: NewJob) => string | number | null) => sql.array(jobs.map(pick), type);
  return db.any(sql.type(jobRow)`
    /* insertJobs */
    INSERT INTO jobs (id, tenant, kind, input, max_attempts, priority, created_at, run_at, timeout_ms, idempotency_key)
    -- One reading of the clock for the batch: a job without runAt is due exactly when it was created.
    SELECT n.id, n.tenant, n.kind, n.input::jsonb, n.max_attempts, n.priority, clock.at, coalesce(n.run_at::timestamptz, clock.at),
      n.timeout_ms, n.idempotency_key
    FROM (SELECT clock_timestamp() AS at) AS clock, unnest(
      ${column('uuid', (job) => job.id)}, ${column('text', (job) => job.tenant)},
      ${column('text', (job) => job.kind)}, ${column('text', (job) => JSON.stringify(job.input))},
      ${column('int4', (job) => job.maxAttempts)}, ${column('int4', (job) => job.priority)},
      ${column('text', (job) => job.runAt)}, ${column('int4', (job) => job.timeoutMs)},
      ${column('text', (job) => job.idempotencyKey)}
    ) WITH ORDINALITY AS n (id, tenant, kind, input, max_attempts, priority, run_at, timeout_ms, idempotency_key, ord)
    ORDER BY CASE WHEN n.idempotency_key IS NULL THEN NULL ELSE n.tenant END, n.idempotency_key, n.ord
    ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING ${jobColumns}`);
}

/**
 * The job holding an idempotency key, and whether it was created by the same request (kind and input). The
 * inputs are compared as jsonb, the form the row holds: how the client wrote the input (inline in the query
 * or as a variable), its key order and its number spelling (1.0 or 1) do not make it another input.
 */
export async function findJobByIdempotencyKey(
  db: CommonQueryMethods,
  job: Pick<NewJob, 'tenant' | 'idempotencyKey' | 'kind' | 'input'>,
): Promise<{ job: Job; sameRequest: boolean } | null> {
  const row = await db.maybeOne(sql.type(jobRow.extend({ sameRequest: z.boolean() }))`
    /* findJobByIdempotencyKey */
    SELECT ${jobColumns}, (kind = ${job.kind} AND input = ${sql.jsonb(job.input)}) AS "sameRequest"
    FROM jobs WHERE tenant = ${job.tenant} AND idempotency_key = ${job.idempotencyKey}`);
  if (!row) return null;
  const { sameRequest, ...found } = row;
  return { job: found, sameRequest };
}

/** The job with this id, if it belongs to `tenant`: another tenant's job is as absent as a missing one. */
export async function findJobById(db: CommonQueryMethods, tenant: string, id: string): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* findJobById */
    SELECT ${jobColumns} FROM jobs WHERE id = ${id} AND tenant = ${tenant}`);
}

/**
 * Newest first, keyset-paginated on (created_at, id); asks for one row more than `limit` to know if more follow.
 * A rare status-and-kind filter (1,000,000 jobs, none FAILED of kind sleep) reads the combined index:
 *   Limit -> Index Scan using jobs_tenant_kind_status_list_idx on jobs
 *              Index Cond: ((tenant = 'default') AND (kind = 'sleep') AND (status = 'failed'))
 * (several statuses: the same index with `status = ANY(…)`, then a Sort of the few rows it finds).
 */
export async function listJobs(
  db: CommonQueryMethods,
  filter: { tenant: string; statuses: readonly JobStatus[] | null; kind: string | null; after: JobCursor | null; limit: number },
): Promise<readonly Job[]> {
  const conditions = [sql.fragment`tenant = ${filter.tenant}`];
  // One status as `=`, so that the (tenant, [kind,] status, created_at) index returns rows in list order.
  if (filter.statuses?.length === 1) conditions.push(sql.fragment`status = ${filter.statuses[0] as string}`);
  else if (filter.statuses) conditions.push(sql.fragment`status = ANY(${sql.array(filter.statuses, 'text')})`);
  if (filter.kind !== null) conditions.push(sql.fragment`kind = ${filter.kind}`);
  if (filter.after) {
    conditions.push(sql.fragment`(created_at, id) < (${filter.after.createdAt}::timestamptz, ${filter.after.id}::uuid)`);
  }
  return db.any(sql.type(jobRow)`
    /* listJobs */
    SELECT ${jobColumns} FROM jobs
    WHERE ${sql.join(conditions, sql.fragment` AND `)}
    ORDER BY created_at DESC, id DESC
    LIMIT ${filter.limit + 1}`);
}

/** A job as this process claimed it: the guard of every later statement on it. */
export type Claim = { id: string; workerId: number; attempt: number };

/** What a claim asks of one kind: how many of its jobs it may take, and the kind's defaults to fill in. */
export type KindClaim = {
  kind: string;
  /** At most this many of the kind's jobs: the free slots, or fewer when the kind's concurrency says so. */
  free: number;
  /** max_attempts for a job enqueued by jobql_create_job without one (max_attempts_from_kind). */
  maxAttempts: number;
  /** timeout_ms for a job that has none. */
  timeoutMs: number | null;
};

/**
 * Takes up to `limit` due queued jobs for this process, at most `free` of each kind in `kinds` and none of any
 * other kind (a process claims only what it has handlers for), higher priority first, then earliest due, in
 * one statement (one commit for a batch of free slots). A kind at its concurrency limit is simply not asked
 * for, so due jobs of a saturated kind cost nothing until one of its jobs ends and the runner claims again.
 *
 * Per kind, a LATERAL subquery reads that kind's range of jobs_claim_kind_order_idx in claim order, LIMIT its
 * free count, and locks with FOR UPDATE SKIP LOCKED, so several processes claim at once without waiting on
 * each other and never take the same row; the global LIMIT then keeps the first `limit` of those in claim
 * order. Rows a kind locked beyond that stay locked only until this statement commits (other claims skip them
 * for that moment). The jobs are picked and locked in a MATERIALIZED CTE that runs exactly once, and the
 * UPDATE joins it: with `WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` the planner may run the
 * subquery once per outer row, each run skipping the rows the previous ones locked, and one claim took every
 * queued job. The outer status check re-runs on each locked row.
 *
 * "Due" is `run_at <= due_by`, the clock read once per statement (the `clock` CTE, read through InitPlans,
 * which are values an index condition can use). It is read when the first scan starts, after the statement took
 * its snapshot, so every job the claim can see whose run_at was its insert's clock (a job due when created) is
 * due by it; now() would be the transaction's start, which comes before the snapshot (and, in a caller's
 * transaction, long before). A bare clock_timestamp() (as before issue 13's scale of data) is volatile, so it
 * was a Filter on each row: every claim fetched from the heap every queued job of each kind it asked for, due or
 * not (10,000 jobs scheduled for later: 282 buffers per claim). And the claim index is ordered by priority
 * first, so even as an index condition "due" cannot end a scan of a kind's whole range: the jobs scheduled for
 * later were still passed over, in the index (88 buffers), whenever fewer than `free` jobs were due.
 *
 * So a kind's queue is read one priority at a time, highest first: `levels` walks the distinct priorities of
 * its queued jobs (one probe of jobs_claim_kind_order_idx each; usually one or two levels), and for each level
 * the due jobs are a range bounded by the clock: (kind, priority, run_at <= due_by) in the claim index, or
 * (status, kind, run_at <= due_by) in jobs_unfinished_kind_idx filtered on the priority, whichever the planner
 * prices lower; neither reads a job scheduled for later (test/large-table-plans.test.ts). The kind's LIMIT stops
 * the walk once it has its free count: the levels come out of the recursive CTE highest first, each level's jobs
 * in (run_at, id) order, and the nested loop keeps that order, so the first `free` rows are the kind's first
 * in claim order. An ORDER BY there would add a Sort that reads (and locks) every level's jobs first: the
 * plan tests check that the statement's only Sort is the one across kinds. With 10,000 jobs of a kind
 * scheduled for later, a claim for four kinds reads 36 buffers with nothing due, 38 with one (282 with the bare
 * clock_timestamp(), 88 with the clock as an index condition alone). Plan:
 *   Update on jobs -> Nested Loop -> CTE Scan on picked (Limit -> Sort -> Nested Loop -> Function Scan on unnest
 *     -> Limit -> Nested Loop -> CTE Scan on levels (Recursive Union: Index Only Scans of jobs_claim_kind_order_idx,
 *                                                     Index Cond: ((kind = $k) AND (priority < levels.priority)))
 *          -> Limit -> LockRows -> Incremental Sort -> Index Scan using jobs_unfinished_kind_idx
 *               Index Cond: ((status = 'queued') AND (kind = w.kind) AND (run_at <= $due_by))
 *               Filter: (priority = levels.priority))
 * The kind's defaults a job does not carry are filled in here, by a process that knows the kind: maxAttempts
 * for a job enqueued through SQL without one, and timeoutMs, so that every process (recovery included) reads
 * the same values from the row. Returned in claim order.
 */
export async function claimNextJobs(
  db: CommonQueryMethods,
  workerId: number,
  limit: number,
  kinds: readonly KindClaim[],
): Promise<readonly Job[]> {
  if (limit <= 0 || kinds.length === 0) return [];
  const jobs = await db.any(sql.type(jobRow)`
    /* claimNextJobs */
    WITH clock AS (SELECT clock_timestamp() AS due_by),
    picked AS MATERIALIZED (
      SELECT c.id AS picked_id, w.default_max_attempts, w.default_timeout_ms
      FROM unnest(${sql.array(
        kinds.map((k) => k.kind),
        'text',
      )}::text[], ${sql.array(
        kinds.map((k) => k.free),
        'int4',
      )}::int[], ${sql.array(
        kinds.map((k) => k.maxAttempts),
        'int4',
      )}::int[], ${sql.array(
        kinds.map((k) => k.timeoutMs),
        'int4',
      )}::int[]) AS w (kind, free, default_max_attempts, default_timeout_ms)
      CROSS JOIN LATERAL (
        WITH RECURSIVE levels (priority) AS (
          SELECT max(priority) FROM jobs WHERE status = 'queued' AND kind = w.kind
          UNION ALL
          SELECT (SELECT max(priority) FROM jobs WHERE status = 'queued' AND kind = w.kind AND priority < levels.priority)
          FROM levels WHERE levels.priority IS NOT NULL
        )
        SELECT due.id, due.priority, due.run_at
        FROM levels CROSS JOIN LATERAL (
          SELECT id, priority, run_at FROM jobs
          WHERE status = 'queued' AND jobs.kind = w.kind AND jobs.priority = levels.priority
            AND run_at <= (SELECT due_by FROM clock)
          ORDER BY priority DESC, run_at, id
          LIMIT w.free
          FOR UPDATE SKIP LOCKED
        ) due
        -- No ORDER BY: the levels come highest first and the nested loop keeps their order (see above).
        LIMIT w.free
      ) c
      ORDER BY c.priority DESC, c.run_at, c.id
      LIMIT ${limit}
    )
    UPDATE jobs SET status = 'running', attempt = attempt + 1, worker_id = ${workerId},
      started_at = clock_timestamp(), finished_at = NULL, progress = NULL,
      max_attempts = CASE WHEN max_attempts_from_kind THEN picked.default_max_attempts ELSE max_attempts END,
      max_attempts_from_kind = false,
      timeout_ms = coalesce(timeout_ms, picked.default_timeout_ms)
    FROM picked
    WHERE jobs.id = picked.picked_id AND jobs.status = 'queued'
    RETURNING ${jobColumns}`);
  // UPDATE … RETURNING does not keep the CTE's order.
  return [...jobs].sort((a, b) => b.priority - a.priority || (a.runAt < b.runAt ? -1 : a.runAt > b.runAt ? 1 : a.id.localeCompare(b.id)));
}

/**
 * Undoes claims this process cannot honour (more jobs than free slots): the jobs go back to the queue, still
 * due, with the attempt the claim counted taken back. Guarded by the claims; returns how many went back.
 */
export async function releaseClaimedJobs(db: CommonQueryMethods, claims: readonly Claim[]): Promise<number> {
  if (claims.length === 0) return 0;
  const result = await db.query(sql.unsafe`
    /* releaseClaimedJobs */
    UPDATE jobs SET status = 'queued', attempt = attempt - 1, worker_id = NULL, started_at = NULL
    FROM unnest(${sql.array(
      claims.map((claim) => claim.id),
      'uuid',
    )}::uuid[], ${sql.array(
      claims.map((claim) => claim.workerId),
      'int4',
    )}::int[], ${sql.array(
      claims.map((claim) => claim.attempt),
      'int4',
    )}::int[]) AS released (released_id, released_worker_id, released_attempt)
    WHERE jobs.id = released_id AND jobs.status = 'running' AND jobs.worker_id = released_worker_id
      AND jobs.attempt = released_attempt`);
  return result.rowCount;
}

/**
 * When the next job of these kinds falls due (null: none scheduled), so an idle runner can sleep exactly that
 * long. Only later jobs of the kinds it may claim now count: a due job of a saturated kind, or one of a kind
 * this process does not run, must not keep it from waking for a later job it can take. Per kind, the first entry
 * after the clock (read once, so that it bounds the scan) of its range of jobs_unfinished_kind_idx:
 *   Aggregate -> Nested Loop -> Function Scan on unnest k
 *     -> Limit -> Index Only Scan using jobs_unfinished_kind_idx on jobs
 *          Index Cond: ((status = 'queued') AND (kind = k.kind) AND (run_at > $0))
 * (a scan of (status, run_at) in run_at order passed over every due job of every kind, and fetched each, since
 * a bare clock_timestamp() is a per-row Filter).
 */
export async function findNextRunAt(db: CommonQueryMethods, kinds: readonly string[]): Promise<number | null> {
  if (kinds.length === 0) return null;
  return db.oneFirst(sql.type(z.object({ delayMs: z.number().nullable() }))`
    /* findNextRunAt */
    SELECT (extract(epoch FROM min(next.run_at) - clock_timestamp()) * 1000)::float8 AS "delayMs"
    FROM unnest(${sql.array(kinds, 'text')}::text[]) AS k (kind)
    CROSS JOIN LATERAL (
      SELECT run_at FROM jobs
      WHERE status = 'queued' AND jobs.kind = k.kind AND run_at > (SELECT clock_timestamp())
      ORDER BY run_at
      LIMIT 1
    ) next`);
}

// The finishing statements are guarded by the claim (worker and attempt) they were made under: if the job
// was recovered meanwhile, or claimed again, a late finish changes nothing and returns null.
const claimed = (claim: Claim) =>
  sql.fragment`id = ${claim.id} AND status = 'running' AND worker_id = ${claim.workerId} AND attempt = ${claim.attempt}`;

/** A finished attempt's result, waiting for the statement that writes it (completeJobs). */
export type Completion = { claim: Claim; result: JsonValue };

/**
 * Completes jobs, one or many in one statement and one commit (the runner's group commit, completion-batch.ts):
 * every row is guarded by its own claim (as `claimed` guards the other finishing statements), so a job recovered
 * or claimed again meanwhile is left alone and simply not returned. Each row still gets its own revision (the
 * BEFORE row trigger) and event row, gap-free; the statement-level trigger writes all of the batch's events in
 * one INSERT and announces them in one NOTIFY (a few for a large batch). The results travel as JSON text (a
 * jsonb[] parameter would need its own array-literal quoting).
 */
export async function completeJobs(db: CommonQueryMethods, completions: readonly Completion[]): Promise<readonly Job[]> {
  if (completions.length === 0) return [];
  return db.any(sql.type(jobRow)`
    /* completeJobs */
    UPDATE jobs SET status = 'completed', result = done.done_result::jsonb, progress = 1, finished_at = clock_timestamp()
    FROM unnest(${sql.array(
      completions.map((c) => c.claim.id),
      'uuid',
    )}::uuid[], ${sql.array(
      completions.map((c) => c.claim.workerId),
      'int4',
    )}::int[], ${sql.array(
      completions.map((c) => c.claim.attempt),
      'int4',
    )}::int[], ${sql.array(
      completions.map((c) => JSON.stringify(c.result)),
      'text',
    )}::text[]) AS done (done_id, done_worker_id, done_attempt, done_result)
    WHERE jobs.id = done.done_id AND jobs.status = 'running' AND jobs.worker_id = done.done_worker_id
      AND jobs.attempt = done.done_attempt
    RETURNING ${jobColumns}`);
}

/**
 * How an attempt that did not succeed ends, in one place for the runner, shutdown and recovery: a requested
 * cancel wins (CANCELLED, the error untouched); with attempts left the job is queued again after an
 * exponential backoff with jitter (base·2^(attempt-1), capped at an hour, ±25%), keeping the error as
 * lastError; otherwise it is FAILED.
 */
const endAttempt = (error: { code: string | FragmentSqlToken; message: string | FragmentSqlToken }, backoffBaseMs: number) => sql.fragment`
  status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                WHEN attempt < max_attempts THEN 'queued' ELSE 'failed' END,
  error = CASE WHEN cancel_requested_at IS NOT NULL THEN error ELSE ${error.message} END,
  error_code = CASE WHEN cancel_requested_at IS NOT NULL THEN error_code ELSE ${error.code} END,
  run_at = CASE WHEN cancel_requested_at IS NULL AND attempt < max_attempts
                THEN clock_timestamp() + make_interval(secs => least(3600.0, ${backoffBaseMs}::float8 / 1000 * 2 ^ (attempt - 1)) * (0.75 + random() / 2))
                ELSE run_at END,
  finished_at = CASE WHEN cancel_requested_at IS NOT NULL OR attempt >= max_attempts THEN clock_timestamp() END`;

export async function endFailedAttempt(
  db: CommonQueryMethods,
  claim: Claim,
  error: { code: string; message: string },
  backoffBaseMs: number,
): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* endFailedAttempt */
    UPDATE jobs SET ${endAttempt(error, backoffBaseMs)}
    WHERE ${claimed(claim)}
    RETURNING ${jobColumns}`);
}

/**
 * Ends an attempt that can never succeed (its input cannot be read, or its kind rejects it) as FAILED, whatever
 * attempts are left: a retry would fail the same way. A requested cancel still wins.
 */
export async function failClaimedJob(db: CommonQueryMethods, claim: Claim, error: { code: string; message: string }): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* failClaimedJob */
    UPDATE jobs SET
      status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled' ELSE 'failed' END,
      error = CASE WHEN cancel_requested_at IS NOT NULL THEN error ELSE ${error.message} END,
      error_code = CASE WHEN cancel_requested_at IS NOT NULL THEN error_code ELSE ${error.code} END,
      finished_at = clock_timestamp()
    WHERE ${claimed(claim)}
    RETURNING ${jobColumns}`);
}

export async function updateJobProgress(db: CommonQueryMethods, claim: Claim, progress: number): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    /* updateJobProgress */
    UPDATE jobs SET progress = ${progress} WHERE ${claimed(claim)}`);
  return result.rowCount === 1;
}

/** An attempt ended by a statement that acts on many jobs: which job, and where it went (metrics and logs). */
const endedAttempt = jobRow.pick({ id: true, kind: true, status: true, errorCode: true });
export type EndedAttempt = z.infer<typeof endedAttempt>;

/**
 * Graceful stop, or a lost session: whatever this process still runs under `workerId` ends its attempt as
 * interrupted, with the message of `reason`.
 */
export async function interruptJobsOfWorker(
  db: CommonQueryMethods,
  workerId: number,
  reason: Interruption,
  backoffBaseMs: number,
): Promise<readonly EndedAttempt[]> {
  return db.any(sql.type(endedAttempt)`
    /* interruptJobsOfWorker */
    UPDATE jobs SET ${endAttempt(reason, backoffBaseMs)}
    WHERE status = 'running' AND worker_id = ${workerId}
    RETURNING id, kind, status, error_code AS "errorCode"`);
}

/**
 * Recovery: ends the running attempts of every process that is gone, as interrupted. A live process holds
 * the session advisory lock (namespace, worker_id) on its own connection for as long as it lives, and
 * PostgreSQL releases it the moment that session ends (crash, SIGKILL, OOM kill, or a dead peer found by TCP
 * keepalive). So if this transaction can take the lock, its owner is dead: no timeout to wait for, and a live
 * process's jobs are never touched. The xact lock is held until commit, so two processes recovering at once
 * do not both act on the same worker.
 */
export async function recoverJobsOfDeadWorkers(db: CommonQueryMethods, backoffBaseMs: number): Promise<readonly EndedAttempt[]> {
  return db.any(sql.type(endedAttempt)`
    /* recoverJobsOfDeadWorkers */
    WITH running_workers AS MATERIALIZED (
      SELECT DISTINCT worker_id FROM jobs WHERE status = 'running'
    ), dead_workers AS MATERIALIZED (
      SELECT worker_id FROM running_workers
      WHERE pg_try_advisory_xact_lock(${WORKER_LOCK_NAMESPACE}, worker_id)
    )
    UPDATE jobs SET ${endAttempt(interruptions.processGone, backoffBaseMs)}
    FROM dead_workers
    WHERE jobs.status = 'running' AND jobs.worker_id = dead_workers.worker_id
    RETURNING jobs.id, jobs.kind, jobs.status, jobs.error_code AS "errorCode"`);
}

// Liveness by heartbeat (migrations/005). The lock above says "connected"; a process stopped with SIGSTOP,
// or whose event loop is blocked, stays connected (the kernel answers TCP keepalives for it) while it does
// nothing. So each process also writes a heartbeat from its own event loop, and one whose heartbeat is older
// than the lease, by the database's clock, is treated as dead: its row is deleted, its sessions terminated
// (which releases its lock and its place in the notification queue) and its running jobs recovered.

/**
 * The worker session's own connection: a pg.Client outside slonik's pool (see worker-session.ts), so its
 * statements are plain text. They run there, not on the pool, so that a busy pool cannot delay a heartbeat.
 */
export type SessionClient = { query: (text: string, values: unknown[]) => Promise<{ rowCount: number | null; rows: unknown[] }> };

// Worker liveness: every statement of the protocol (the session's id, keepalives and lock, then its heartbeat
// row) is here, in the order a session runs them; worker-session.ts decides when.

/** A new worker id for a session: never reused, so that a claim made under a lost session stays void. */
export async function nextWorkerId(session: SessionClient): Promise<number> {
  const { rows } = await session.query(`/* nextWorkerId */ SELECT nextval('jobs_worker_id_seq')::int AS id`, []);
  return (rows[0] as { id: number }).id;
}

/**
 * Idle probes after probeSeconds, then every probeSeconds, three tries: the server ends a dead peer's
 * session (and releases its lock) within about 4 × probeSeconds ≈ the lease.
 */
export async function setSessionKeepalives(session: SessionClient, probeSeconds: number): Promise<void> {
  await session.query(
    `/* setSessionKeepalives */ SELECT set_config('tcp_keepalives_idle', $1, false),
       set_config('tcp_keepalives_interval', $1, false), set_config('tcp_keepalives_count', '3', false)`,
    [String(probeSeconds)],
  );
}

/** "Worker N is connected": held until this session ends; nothing else ever unlocks it (see recoverJobsOfDeadWorkers). */
export async function lockWorkerId(session: SessionClient, workerId: number): Promise<void> {
  await session.query('/* lockWorkerId */ SELECT pg_advisory_lock($1, $2)', [WORKER_LOCK_NAMESPACE, workerId]);
}

/** A process announces itself under a worker id, with the kinds it runs; its heartbeat starts now. */
export async function registerWorker(
  session: SessionClient,
  workerId: number,
  sessionTag: string,
  kinds: readonly string[],
): Promise<void> {
  await session.query('/* registerWorker */ INSERT INTO workers (id, session_tag, kinds) VALUES ($1, $2, $3::text[])', [
    workerId,
    sessionTag,
    kinds,
  ]);
}

/**
 * The heartbeat, with the database's clock. False when the row is gone: another process has judged this one
 * dead (and ended its jobs), so it must stop acting under this worker id.
 */
export async function recordWorkerHeartbeat(session: SessionClient, workerId: number): Promise<boolean> {
  const result = await session.query('/* recordWorkerHeartbeat */ UPDATE workers SET heartbeat_at = now() WHERE id = $1', [workerId]);
  return result.rowCount === 1;
}

/** A process that stops, or that left a worker id behind after losing its session, removes its row. */
export async function deregisterWorker(session: SessionClient, workerId: number): Promise<void> {
  await session.query('/* deregisterWorker */ DELETE FROM workers WHERE id = $1', [workerId]);
}

const seconds = (ms: number) => sql.fragment`make_interval(secs => ${ms / 1000})`;

/**
 * Deletes the rows of processes whose heartbeat is older than the lease, and returns them. SKIP LOCKED: a
 * row locked by its own heartbeat (that process answers) or by another recovering process is not ours.
 */
export async function removeUnresponsiveWorkers(
  db: CommonQueryMethods,
  leaseMs: number,
): Promise<readonly { id: number; sessionTag: string }[]> {
  return db.any(sql.type(z.object({ id: z.number(), sessionTag: z.string() }))`
    /* removeUnresponsiveWorkers */
    WITH unresponsive AS MATERIALIZED (
      SELECT id FROM workers WHERE heartbeat_at < now() - ${seconds(leaseMs)}
      FOR UPDATE SKIP LOCKED
    )
    DELETE FROM workers USING unresponsive WHERE workers.id = unresponsive.id
    RETURNING workers.id, workers.session_tag AS "sessionTag"`);
}

/**
 * Terminates every session (lock session, listener, pool connections) of the processes with these tags,
 * unless the tag also has a fresh heartbeat (the process came back under a new worker id meanwhile), and
 * waits up to a second for each to end. Only sessions this role may signal are touched (the same role, or
 * any as superuser), so a foreign session never makes recovery fail; the running statement's own backend
 * is spared (a process recovering its own stale row ends its other sessions and then finds out).
 */
export async function terminateSessionsOfUnresponsiveProcesses(
  db: CommonQueryMethods,
  sessionTags: readonly string[],
  leaseMs: number,
): Promise<number> {
  if (sessionTags.length === 0) return 0;
  return db.oneFirst(sql.type(z.object({ terminated: z.number() }))`
    /* terminateSessionsOfUnresponsiveProcesses */
    SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid, 1000))::int AS terminated
    FROM pg_stat_activity a
    JOIN unnest(${sql.array(sessionTags, 'text')}) AS t (tag) ON a.application_name LIKE t.tag || ':%'
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND pg_has_role(a.usesysid, 'USAGE')
      AND NOT EXISTS (SELECT FROM workers w WHERE w.session_tag = t.tag AND w.heartbeat_at >= now() - ${seconds(leaseMs)})`);
}

/** Default timeouts of the kinds this process knows (a job's own timeoutMs wins). */
export type KindTimeouts = readonly { kind: string; timeoutMs: number }[];

/**
 * Running jobs with their time limit (the job's timeoutMs, else its kind's default), picked by `condition`
 * on `j` (jobs) and `limit_ms`. The claim is returned under other names than jobs' columns, so that the
 * UPDATE that joins it can match the same attempt (a job ended and claimed again meanwhile is not touched).
 */
const runningJobsWithLimit = (kindTimeouts: KindTimeouts, condition: (limitMs: FragmentSqlToken) => FragmentSqlToken) => {
  const limitMs = sql.fragment`coalesce(j.timeout_ms, d.default_ms)`;
  return sql.fragment`
    SELECT j.id AS job_id, j.worker_id AS claimed_by, j.attempt AS claimed_attempt, ${limitMs} AS limit_ms
    FROM jobs j
    LEFT JOIN unnest(${sql.array(
      kindTimeouts.map((k) => k.kind),
      'text',
    )}::text[], ${sql.array(
      kindTimeouts.map((k) => k.timeoutMs),
      'int4',
    )}::int[]) AS d (kind, default_ms) ON d.kind = j.kind
    WHERE j.status = 'running' AND ${condition(limitMs)}`;
};

// An attempt ended by another process: TIMEOUT when it has run past its limit, else `fallback`; a cancel
// request still wins (endAttempt).
const pastLimit = sql.fragment`(limit_ms IS NOT NULL AND started_at + make_interval(secs => limit_ms / 1000.0) <= now())`;
const timeoutOr = (fallback: { code: string; message: string }) => ({
  code: sql.fragment`CASE WHEN ${pastLimit} THEN ${FailureCode.TIMEOUT} ELSE ${fallback.code} END`,
  message: sql.fragment`CASE WHEN ${pastLimit} THEN format('the job ran longer than its timeout of %s ms', limit_ms) ELSE ${fallback.message} END`,
});
const endedJoined = sql.fragment`
  FROM picked WHERE jobs.id = picked.job_id AND jobs.status = 'running'
    AND jobs.worker_id = picked.claimed_by AND jobs.attempt = picked.claimed_attempt
  RETURNING jobs.id, jobs.kind, jobs.status, jobs.error_code AS "errorCode"`;

/** Ends the running attempts of workers judged dead by their heartbeat: INTERRUPTED, or TIMEOUT when overdue. */
export async function endRunningJobsOfWorkers(
  db: CommonQueryMethods,
  workerIds: readonly number[],
  options: { backoffBaseMs: number; kindTimeouts: KindTimeouts },
): Promise<readonly EndedAttempt[]> {
  if (workerIds.length === 0) return [];
  return db.any(sql.type(endedAttempt)`
    /* endRunningJobsOfWorkers */
    WITH picked AS MATERIALIZED (
      ${runningJobsWithLimit(options.kindTimeouts, () => sql.fragment`j.worker_id = ANY(${sql.array(workerIds, 'int4')})`)}
    )
    UPDATE jobs SET ${endAttempt(timeoutOr(interruptions.processGone), options.backoffBaseMs)}
    ${endedJoined}`);
}

/**
 * Timeouts and cancel requests enforced by any process, whoever runs the job: a running attempt whose time
 * limit passed more than ABORT_GRACE_MS + the lease ago ends TIMEOUT, one whose cancel request is older than
 * that ends CANCELLED. A live owner ends its attempts within ABORT_GRACE_MS of either (plus a poll interval for
 * a missed cancel notification), so this only acts where the owner cannot: it stopped answering for less
 * than the lease, its writes fail, or it does not know the kind's default timeout.
 */
export async function endOverdueJobs(
  db: CommonQueryMethods,
  options: { leaseMs: number; abortGraceMs: number; backoffBaseMs: number; kindTimeouts: KindTimeouts },
): Promise<readonly EndedAttempt[]> {
  const slackMs = options.abortGraceMs + options.leaseMs;
  return db.any(sql.type(endedAttempt)`
    /* endOverdueJobs */
    WITH picked AS MATERIALIZED (
      ${runningJobsWithLimit(
        options.kindTimeouts,
        (limitMs) => sql.fragment`(j.cancel_requested_at < now() - ${seconds(slackMs)}
          OR j.started_at + make_interval(secs => (${limitMs} + ${slackMs}) / 1000.0) < now())`,
      )}
    )
    UPDATE jobs SET ${endAttempt(timeoutOr(interruptions.processGone), options.backoffBaseMs)}
    ${endedJoined}`);
}

/**
 * cancelJob: a queued job is CANCELLED at once; a running one records the request (it survives a lost
 * notification or a restart) and its runner ends it. Returns null when the job is neither queued nor running.
 */
export async function requestCancel(db: CommonQueryMethods, tenant: string, id: string): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* requestCancel */
    UPDATE jobs SET
      status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
      finished_at = CASE WHEN status = 'queued' THEN clock_timestamp() ELSE finished_at END,
      cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp())
    WHERE id = ${id} AND tenant = ${tenant} AND status IN ('queued', 'running')
    RETURNING ${jobColumns}`);
}

/** The runner's backstop for cancel notifications it missed: its running jobs with a cancel request. */
export async function listCancelRequestedJobsOfWorker(db: CommonQueryMethods, workerId: number): Promise<readonly string[]> {
  return db.anyFirst(sql.type(jobRow.pick({ id: true }))`
    /* listCancelRequestedJobsOfWorker */
    SELECT id FROM jobs WHERE status = 'running' AND worker_id = ${workerId} AND cancel_requested_at IS NOT NULL`);
}

/**
 * retryJob: a FAILED or CANCELLED job goes back to the queue as a new attempt (one more than it had), due
 * now; its last error stays readable. Returns null when the job is in another state.
 */
export async function requeueFinishedJob(db: CommonQueryMethods, tenant: string, id: string): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* requeueFinishedJob */
    UPDATE jobs SET status = 'queued', run_at = clock_timestamp(), finished_at = NULL, result = NULL, progress = NULL,
      cancel_requested_at = NULL, max_attempts = greatest(max_attempts, least(100, attempt + 1))
    WHERE id = ${id} AND tenant = ${tenant} AND status IN ('failed', 'cancelled')
    RETURNING ${jobColumns}`);
}

/**
 * For the metrics' gauges: unfinished jobs by what they wait for, across all tenants and processes. The
 * partial index jobs_unfinished_kind_idx keeps this to the unfinished jobs; the finished history is never read:
 *   Aggregate -> Bitmap Heap Scan on jobs -> Bitmap Index Scan on jobs_unfinished_kind_idx
 *                  Recheck Cond: (status = ANY ('{queued,running}'))
 * The kinds live processes run (workers.kinds, one row per process) are gathered once, as an InitPlan, so a
 * due job whose kind none of them runs costs one array comparison. A scrape must not hold a connection while
 * the database is slow, so the statement gives up after `timeoutMs`.
 */
export async function countUnfinishedJobs(
  db: CommonQueryMethods,
  timeoutMs: number,
): Promise<{ queued: number; scheduled: number; running: number; oldestQueuedAgeSeconds: number; queuedUnknownKind: number }> {
  return db.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT set_config('statement_timeout', ${String(timeoutMs)}, true)`);
    return tx.one(sql.type(
      z.object({
        queued: z.number(),
        scheduled: z.number(),
        running: z.number(),
        oldestQueuedAgeSeconds: z.number(),
        queuedUnknownKind: z.number(),
      }),
    )`
      /* countUnfinishedJobs */
      SELECT
        count(*) FILTER (WHERE status = 'queued' AND run_at <= now())::int AS queued,
        count(*) FILTER (WHERE status = 'queued' AND run_at > now())::int AS scheduled,
        count(*) FILTER (WHERE status = 'running')::int AS running,
        coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'queued' AND run_at <= now())), 0)::float8
          AS "oldestQueuedAgeSeconds",
        count(*) FILTER (WHERE status = 'queued' AND run_at <= now()
          AND kind <> ALL (coalesce((SELECT array_agg(DISTINCT k) FROM workers, unnest(workers.kinds) AS k), '{}')))::int
          AS "queuedUnknownKind"
      FROM jobs WHERE status IN ('queued', 'running')`);
  });
}

/**
 * Retention: deletes up to `batchSize` finished jobs older than `olderThanMs`, oldest first (events go with
 * them). The cutoff uses now() (the statement's start, as this runs on its own): an index condition cannot use
 * a volatile clock_timestamp(), which made every pass scan the whole table:
 *   Delete on jobs -> Nested Loop -> … Limit -> LockRows -> Index Scan using jobs_finished_at_idx on jobs
 *                                                              Index Cond: (finished_at < (now() - '720:00:00'))
 */
export async function deleteFinishedJobs(db: CommonQueryMethods, olderThanMs: number, batchSize: number): Promise<number> {
  const result = await db.query(sql.unsafe`
    /* deleteFinishedJobs */
    DELETE FROM jobs WHERE id IN (
      SELECT id FROM jobs
      WHERE finished_at < now() - make_interval(secs => ${olderThanMs / 1000})
        AND status IN ('completed', 'failed', 'cancelled')
      ORDER BY finished_at
      LIMIT ${batchSize}
      FOR UPDATE SKIP LOCKED
    )`);
  return result.rowCount;
}

/** One job's recorded states after `afterRevision`, oldest first: what a watcher of that job has not seen. */
export async function listJobEventsAfter(
  db: CommonQueryMethods,
  tenant: string,
  id: string,
  afterRevision: number,
  limit: number,
): Promise<readonly Job[]> {
  return db.any(sql.type(jobRow)`
    /* listJobEventsAfter */
    SELECT ${eventColumns} FROM job_events e JOIN jobs j ON j.id = e.job_id
    WHERE e.job_id = ${id} AND j.tenant = ${tenant} AND e.revision > ${afterRevision}
    ORDER BY e.revision
    LIMIT ${limit}`);
}

/** Jobs as they were at the given revisions, in the order asked (pairs whose event was pruned are skipped). */
export async function listJobEventsAt(
  db: CommonQueryMethods,
  tenant: string,
  pairs: readonly { id: string; revision: number }[],
): Promise<readonly Job[]> {
  if (pairs.length === 0) return [];
  return db.any(sql.type(jobRow)`
    /* listJobEventsAt */
    SELECT ${eventColumns}
    FROM unnest(${sql.array(
      pairs.map((p) => p.id),
      'uuid',
    )}::uuid[], ${sql.array(
      pairs.map((p) => p.revision),
      'int4',
    )}::int[]) WITH ORDINALITY AS wanted (job_id, revision, position)
    JOIN job_events e ON e.job_id = wanted.job_id AND e.revision = wanted.revision
    JOIN jobs j ON j.id = e.job_id AND j.tenant = ${tenant}
    ORDER BY wanted.position`);
}

/** Every change of a tenant's jobs recorded since `since` (an ISO timestamp), oldest first: a listener outage replayed. */
export async function listJobEventsSince(db: CommonQueryMethods, tenant: string, since: string, limit: number): Promise<readonly Job[]> {
  return db.any(sql.type(jobRow)`
    /* listJobEventsSince */
    SELECT ${eventColumns} FROM job_events e JOIN jobs j ON j.id = e.job_id
    WHERE e.recorded_at >= ${since}::timestamptz AND j.tenant = ${tenant}
    ORDER BY e.recorded_at, e.job_id, e.revision
    LIMIT ${limit}`);
}

/** Current revisions of a tenant's given jobs; ids that do not exist (for it) are absent. The cheap backstop of NOTIFY. */
export async function findJobRevisions(
  db: CommonQueryMethods,
  tenant: string,
  ids: readonly string[],
): Promise<readonly { id: string; revision: number }[]> {
  return db.any(sql.type(jobRow.pick({ id: true, revision: true }))`
    /* findJobRevisions */
    SELECT id, revision FROM jobs WHERE id = ANY(${sql.array(ids, 'uuid')}) AND tenant = ${tenant}`);
}

/**
 * Deletes event rows older than `olderThanMs`, oldest first, a batch at a time so that no lock is held for
 * long. A subscriber that resumes from a pruned revision gets the current row instead (see live/job-watch.ts). As in
 * deleteFinishedJobs, the cutoff uses now() so that the index can serve it:
 *   Delete on job_events -> InitPlan: Limit -> Index Scan using job_events_recorded_at_idx on job_events
 *                                                Index Cond: (recorded_at < (now() - '01:00:00'))
 */
export async function pruneJobEvents(db: CommonQueryMethods, olderThanMs: number, batchSize: number): Promise<number> {
  const result = await db.query(sql.unsafe`
    /* pruneJobEvents */
    DELETE FROM job_events WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM job_events
      WHERE recorded_at < now() - make_interval(secs => ${olderThanMs / 1000})
      ORDER BY recorded_at
      LIMIT ${batchSize}
    ))`);
  return result.rowCount;
}

/** A schedule entry as the cron scheduler's statements name it: its kind and its key among the kind's entries. */
export type ScheduleRef = { kind: string; key: string };

/**
 * The database's clock, and the last tick recorded for each schedule (null: none yet). Every process decides
 * what is due by this clock, not its own, so that processes whose clocks disagree still agree on the ticks.
 * Each schedule's last tick is one backward step of the primary key.
 */
export async function findLastCronTicks(
  db: CommonQueryMethods,
  schedules: readonly ScheduleRef[],
): Promise<{ nowMs: number; last: readonly (ScheduleRef & { lastTickMs: number | null })[] }> {
  if (schedules.length === 0) throw new Error('findLastCronTicks: no schedules');
  const rows = await db.any(sql.type(z.object({ kind: z.string(), key: z.string(), lastTickMs: z.number().nullable(), nowMs: z.number() }))`
    /* findLastCronTicks */
    SELECT s.kind, s.schedule_key AS key, (extract(epoch FROM last.tick_at) * 1000)::float8 AS "lastTickMs",
      (extract(epoch FROM now()) * 1000)::float8 AS "nowMs"
    FROM unnest(${sql.array(
      schedules.map((s) => s.kind),
      'text',
    )}::text[], ${sql.array(
      schedules.map((s) => s.key),
      'text',
    )}::text[]) AS s (kind, schedule_key)
    LEFT JOIN LATERAL (
      SELECT tick_at FROM cron_ticks c WHERE c.kind = s.kind AND c.schedule_key = s.schedule_key
      ORDER BY tick_at DESC LIMIT 1
    ) AS last ON true`);
  return { nowMs: rows[0]?.nowMs ?? 0, last: rows.map(({ nowMs: _, ...row }) => row) };
}

/**
 * Records the given ticks of one schedule and creates one job for each, in one statement: the tick rows are
 * inserted ON CONFLICT DO NOTHING and only the rows this statement inserted get a job, so a tick that several
 * processes find due at once creates exactly one job (a racing insert waits for the first one's commit, then
 * does nothing). Ticks not after the schedule's last recorded one are left out: a process whose view is stale
 * (it froze, or rows were pruned) cannot create a tick the others have gone past. The job is due at its tick.
 */
export async function insertScheduledJobs(
  db: CommonQueryMethods,
  schedule: ScheduleRef & { tenant: string; input: JsonValue; maxAttempts: number; timeoutMs: number | null },
  ticks: readonly string[],
): Promise<readonly Job[]> {
  if (ticks.length === 0) return [];
  return db.any(sql.type(jobRow)`
    /* insertScheduledJobs */
    WITH due AS (
      SELECT t.tick_at, gen_random_uuid() AS job_id
      FROM unnest(${sql.array(ticks, 'timestamptz')}) AS t (tick_at)
      WHERE t.tick_at > coalesce(
        (SELECT max(tick_at) FROM cron_ticks WHERE kind = ${schedule.kind} AND schedule_key = ${schedule.key}), '-infinity')
    ), recorded AS (
      INSERT INTO cron_ticks (kind, schedule_key, tick_at, job_id)
      SELECT ${schedule.kind}, ${schedule.key}, tick_at, job_id FROM due
      ON CONFLICT (kind, schedule_key, tick_at) DO NOTHING
      RETURNING tick_at, job_id
    )
    INSERT INTO jobs (id, tenant, kind, input, max_attempts, priority, run_at, timeout_ms)
    SELECT job_id, ${schedule.tenant}, ${schedule.kind}, ${sql.jsonb(schedule.input)}, ${schedule.maxAttempts}, 0, tick_at,
      ${schedule.timeoutMs}
    FROM recorded
    RETURNING ${jobColumns}`);
}

/**
 * Deletes up to `batchSize` tick rows older than `olderThanMs`, oldest first, but never a schedule's newest
 * row: it is the last tick, which decides what a restarted process skips or catches up.
 */
export async function pruneCronTicks(db: CommonQueryMethods, olderThanMs: number, batchSize: number): Promise<number> {
  const result = await db.query(sql.unsafe`
    /* pruneCronTicks */
    DELETE FROM cron_ticks WHERE ctid = ANY(ARRAY(
      SELECT c.ctid FROM cron_ticks c
      WHERE c.tick_at < now() - make_interval(secs => ${olderThanMs / 1000})
        AND EXISTS (SELECT FROM cron_ticks n WHERE n.kind = c.kind AND n.schedule_key = c.schedule_key AND n.tick_at > c.tick_at)
      ORDER BY c.tick_at
      LIMIT ${batchSize}
    ))`);
  return result.rowCount;
}

// ---- Numbers for dashboards (Query.jobStats, Query.jobThroughput) and a job's history (Job.history) ----
// Each reads a tenant's unfinished jobs, its jobs finished in a bounded recent window, or the event log's
// recent rows: never the whole finished history (plans in test/large-table-plans.test.ts).

const kindStatusCount = z.object({
  kind: z.string(),
  status: z.enum(jobStatuses),
  count: z.number().int(),
  /** QUEUED only: how many are not yet due (run_at in the future); 0 otherwise. */
  scheduled: z.number().int(),
  /** QUEUED only: seconds since the oldest was created, and since the longest-waiting due one fell due. */
  oldestAgeSeconds: z.number().nullable(),
  oldestDueAgeSeconds: z.number().nullable(),
});
export type KindStatusCount = z.infer<typeof kindStatusCount>;

/**
 * A tenant's jobs per (kind, status): every QUEUED and RUNNING job, and the jobs that finished within the last
 * `finishedWithinMinutes`, in one statement (one snapshot: the numbers add up). The unfinished part reads the
 * partial index of unfinished jobs; the finished part reads jobs_finished_at_idx from the window's start (an
 * index condition on now(), which is stable; clock_timestamp() would not be). With 50,000 finished jobs of two
 * tenants (test/large-table-plans.test.ts):
 *   Append -> Aggregate -> Bitmap Heap Scan on jobs (Filter: tenant = 'default')
 *                            -> Bitmap Index Scan on jobs_unfinished_kind_idx
 *          -> Aggregate -> Index Scan using jobs_finished_at_idx on jobs
 *                            Index Cond: (finished_at >= (now() - '01:00:00'))   Filter: (tenant = 'default')
 * It costs what the unfinished jobs and the window's finishes (of every tenant) cost, whatever the table's
 * size. A (tenant, finished_at) index would skip other tenants' finishes; on that table the planner preferred
 * this one, so none was added.
 */
export async function countJobsByKindAndStatus(
  db: CommonQueryMethods,
  tenant: string,
  finishedWithinMinutes: number,
): Promise<{ at: string; finishedSince: string; counts: readonly KindStatusCount[] }> {
  const row = await db.one(sql.type(z.object({ at: z.string(), finishedSince: z.string(), counts: z.array(kindStatusCount) }))`
    /* countJobsByKindAndStatus */
    WITH unfinished AS (
      SELECT kind, status, count(*)::int AS count,
        count(*) FILTER (WHERE status = 'queued' AND run_at > now())::int AS scheduled,
        extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8 AS "oldestAgeSeconds",
        extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'queued' AND run_at <= now()))::float8 AS "oldestDueAgeSeconds"
      FROM jobs WHERE tenant = ${tenant} AND status IN ('queued', 'running')
      GROUP BY kind, status
    ), finished AS (
      SELECT kind, status, count(*)::int AS count, 0 AS scheduled, NULL::float8 AS "oldestAgeSeconds",
        NULL::float8 AS "oldestDueAgeSeconds"
      FROM jobs WHERE tenant = ${tenant} AND finished_at >= now() - make_interval(mins => ${finishedWithinMinutes})
      GROUP BY kind, status
    )
    SELECT ${isoValue(sql.fragment`now()`)} AS at, ${isoValue(sql.fragment`now() - make_interval(mins => ${finishedWithinMinutes})`)} AS "finishedSince",
      coalesce((SELECT json_agg(c ORDER BY c.kind, c.status) FROM (SELECT * FROM unfinished UNION ALL SELECT * FROM finished) c), '[]')
        AS counts`);
  return { at: row.at, finishedSince: row.finishedSince, counts: row.counts };
}

const minuteBucket = z.object({ start: z.string(), completed: z.number().int(), failed: z.number().int(), cancelled: z.number().int() });
export type MinuteBucket = z.infer<typeof minuteBucket>;

/**
 * A tenant's jobs finished in each of the last `minutes` minutes (the current, partial one last), by final
 * status; every minute is present, empty ones with zeros. A job counts once, at its latest finish (a retried
 * job's earlier finish was overwritten). Reads jobs_finished_at_idx from the first minute's start:
 *   Hash Join -> Aggregate -> Index Scan using jobs_finished_at_idx on jobs
 *                               Index Cond: (finished_at >= (date_trunc('minute', now()) - '00:59:00'))
 *             -> Hash -> Function Scan on generate_series
 */
export async function countFinishedJobsPerMinute(
  db: CommonQueryMethods,
  tenant: string,
  minutes: number,
): Promise<readonly MinuteBucket[]> {
  const from = sql.fragment`date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})`;
  return db.any(sql.type(minuteBucket)`
    /* countFinishedJobsPerMinute */
    WITH finished AS (
      SELECT date_trunc('minute', finished_at) AS minute,
        count(*) FILTER (WHERE status = 'completed')::int AS completed,
        count(*) FILTER (WHERE status = 'failed')::int AS failed,
        count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
      FROM jobs WHERE tenant = ${tenant} AND finished_at >= ${from}
      GROUP BY 1
    )
    SELECT ${isoValue(sql.fragment`m.minute`)} AS start, coalesce(f.completed, 0) AS completed,
      coalesce(f.failed, 0) AS failed, coalesce(f.cancelled, 0) AS cancelled
    FROM generate_series(${from}, date_trunc('minute', now()), interval '1 minute') AS m (minute)
    LEFT JOIN finished f ON f.minute = m.minute
    ORDER BY m.minute`);
}

const queueChanges = z.object({
  queuedNow: z.number().int(),
  /** From when the event log holds every change (null: it holds none); see countQueueChangesPerMinute. */
  completeSince: z.string().nullable(),
  /** Net change of the QUEUED count per minute (`minute` null: changes recorded after now()). */
  changes: z.array(z.object({ minute: z.string().nullable(), delta: z.number().int() })),
});
export type QueueChanges = z.infer<typeof queueChanges>;

/**
 * The most events (of every tenant) one queue-depth read scans, newest first: it bounds what a busy hour costs.
 * Each kept event costs a primary-key lookup of its job's tenant (about 240 ms for 20,000 on the loaded 2-core
 * bench machine); a service that changes jobs faster than this per window gets depths for its recent minutes only.
 */
export const MAX_QUEUE_DEPTH_EVENTS = 10_000;

/**
 * What queue depth over time is computed from: a tenant's QUEUED jobs now, and the net change of that count in
 * each minute since `minutes` ago, from the event log, in one statement (one snapshot). An event enters the
 * queue when its status is queued, and leaves it when the revision before it was queued. The only ways out of
 * the queue are a claim and cancelJob of a queued job, and a claim shows in the event itself: a running
 * revision with no progress and no cancel request (the claim clears progress; every later running revision
 * has one or the other). A cancelled revision's predecessor is read from the log (primary key); when pruning
 * removed it, the cancel request's time tells: a queued job's is written with the cancellation, a running
 * job's was recorded in an earlier revision, which pruning removed, so it is older than every event left.
 *
 * The log is complete from `completeSince` on: pruning deletes the oldest events first, and retention deletes
 * the oldest finished jobs first (with their events, which are all older than their finish), so every change
 * after the later of the oldest event and the oldest finished job is still here. At most
 * MAX_QUEUE_DEPTH_EVENTS events are read, newest first, of every tenant; when there were more, completeSince
 * moves up to the oldest one read. Only then is each kept event's tenant looked up by primary key, as a scalar
 * subquery, so that the planner never trades the lookups for a hash join over all of jobs (it did, on 50,000
 * rows), nor looks up events the limit drops. With 50,000 finished jobs:
 *   Limit -> Index Scan Backward using job_events_recorded_at_idx on job_events e
 *              Index Cond: (recorded_at >= (date_trunc('minute', now()) - '00:59:00'))
 *   then per event kept: SubPlan -> Index Scan using jobs_pkey on jobs j (and for a CANCELLED one, job_events_pkey)
 * and the QUEUED count from jobs_unfinished_kind_idx, the oldest event and finished job from the first entry of
 * job_events_recorded_at_idx and jobs_finished_at_idx.
 */
export async function countQueueChangesPerMinute(db: CommonQueryMethods, tenant: string, minutes: number): Promise<QueueChanges> {
  const from = sql.fragment`date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})`;
  return db.one(sql.type(queueChanges)`
    /* countQueueChangesPerMinute */
    WITH log AS (
      SELECT oldest_event, CASE WHEN oldest_event IS NOT NULL
        THEN greatest(oldest_event, (SELECT min(finished_at) FROM jobs WHERE finished_at IS NOT NULL)) END AS complete_since
      FROM (SELECT min(recorded_at) AS oldest_event FROM job_events) oldest
    ), newest AS MATERIALIZED (
      SELECT e.job_id, e.revision, e.status, e.progress, e.cancel_requested_at, e.recorded_at
      FROM job_events e WHERE e.recorded_at >= ${from}
      ORDER BY e.recorded_at DESC
      LIMIT ${MAX_QUEUE_DEPTH_EVENTS}
    ), changes AS (
      SELECT CASE WHEN e.recorded_at < now() THEN date_trunc('minute', e.recorded_at) END AS minute,
        (e.status = 'queued')::int - (CASE
          WHEN e.revision = 1 THEN false
          WHEN e.status = 'running' THEN e.progress IS NULL AND e.cancel_requested_at IS NULL
          WHEN e.status = 'cancelled' THEN coalesce(
            (SELECT p.status = 'queued' FROM job_events p WHERE p.job_id = e.job_id AND p.revision = e.revision - 1),
            e.cancel_requested_at > (SELECT oldest_event FROM log))
          ELSE false END)::int AS delta
      -- The tenant is looked up only for the events kept, after the limit.
      FROM newest e WHERE (SELECT j.tenant FROM jobs j WHERE j.id = e.job_id) = ${tenant}
    )
    SELECT (SELECT count(*)::int FROM jobs WHERE tenant = ${tenant} AND status = 'queued') AS "queuedNow",
      (SELECT ${isoValue(sql.fragment`CASE WHEN (SELECT count(*) FROM newest) < ${MAX_QUEUE_DEPTH_EVENTS} THEN complete_since
        ELSE greatest(complete_since, (SELECT min(recorded_at) FROM newest)) END`)} FROM log) AS "completeSince",
      coalesce((SELECT json_agg(json_build_object('minute', ${isoValue(sql.fragment`minute`)}, 'delta', delta))
                FROM (SELECT minute, sum(delta)::int AS delta FROM changes GROUP BY minute) per_minute), '[]') AS changes`);
}

const jobEventRow = z.object({
  revision: z.number().int(),
  status: z.enum(jobStatuses),
  progress: z.number().nullable(),
  attempt: z.number().int(),
  error: z.string().nullable(),
  errorCode: z.string().nullable(),
  at: z.string(),
  runAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  cancelRequestedAt: z.string().nullable(),
});
export type JobEventRow = z.infer<typeof jobEventRow>;

/**
 * One page of a job's revisions from the event log, oldest first, after `afterRevision` (at most `limit` + 1,
 * to tell whether more follow), and the oldest revision the log still holds for it (null: none; earlier ones
 * were pruned). Null when the job is not the tenant's. Both read job_events' primary key (job_id, revision).
 */
export async function listJobHistory(
  db: CommonQueryMethods,
  tenant: string,
  id: string,
  afterRevision: number,
  limit: number,
): Promise<{ firstRevision: number | null; events: readonly JobEventRow[] } | null> {
  const time = (column: string) => isoOf('e', column);
  return db.maybeOne(sql.type(z.object({ firstRevision: z.number().int().nullable(), events: z.array(jobEventRow) }))`
    /* listJobHistory */
    SELECT (SELECT min(revision) FROM job_events WHERE job_id = ${id}) AS "firstRevision",
      coalesce((SELECT json_agg(page ORDER BY page.revision) FROM (
        SELECT e.revision, e.status, e.progress, e.attempt, e.error, e.error_code AS "errorCode", ${time('recorded_at')} AS at,
          ${time('run_at')} AS "runAt", ${time('started_at')} AS "startedAt", ${time('finished_at')} AS "finishedAt",
          ${time('cancel_requested_at')} AS "cancelRequestedAt"
        FROM job_events e WHERE e.job_id = ${id} AND e.revision > ${afterRevision}
        ORDER BY e.revision LIMIT ${limit + 1}) page), '[]') AS events
    FROM jobs WHERE id = ${id} AND tenant = ${tenant}`);
}
