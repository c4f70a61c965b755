import type { CommonQueryMethods } from 'slonik';
import { sql } from '../db/sql.ts';
import type { JobCursor } from './cursor.ts';
import { type Job, type JobStatus, type JsonValue, jobRow } from './job.ts';

// Every statement on `jobs`, one named function each. Callers pass the pool or a transaction.
// The /* name */ comment on each statement makes it recognisable in pg_stat_activity and in logs.

/** Advisory-lock namespace ('jobq'): the first key of pg_advisory_lock(namespace, worker_id). */
export const WORKER_LOCK_NAMESPACE = 0x6a6f6271;

// One column list for every query that returns jobs. Timestamps as UTC ISO-8601 text with microseconds.
const iso = (column: string) => sql.fragment`to_char(${sql.identifier([column])} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const jobColumns = sql.fragment`
  id, kind, status, input, result, error, error_code AS "errorCode", progress, attempt, revision, worker_id AS "workerId",
  ${iso('created_at')} AS "createdAt", ${iso('updated_at')} AS "updatedAt",
  ${iso('started_at')} AS "startedAt", ${iso('finished_at')} AS "finishedAt"`;

// The same shape from job_events (e) joined to jobs (j): the job as it was at that revision.
const isoOf = (table: string, column: string) =>
  sql.fragment`to_char(${sql.identifier([table, column])} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const eventColumns = sql.fragment`
  j.id, j.kind, e.status, j.input, e.result, e.error, e.error_code AS "errorCode", e.progress, e.attempt, e.revision,
  NULL::integer AS "workerId",
  ${isoOf('j', 'created_at')} AS "createdAt", ${isoOf('e', 'updated_at')} AS "updatedAt",
  ${isoOf('e', 'started_at')} AS "startedAt", ${isoOf('e', 'finished_at')} AS "finishedAt"`;

export const INTERRUPTED_MESSAGE =
  'The job was interrupted: the process running it stopped before the job finished. Jobs are not resumed; create a new job to run it again.';

export async function insertJob(db: CommonQueryMethods, job: { id: string; kind: string; input: JsonValue }): Promise<Job> {
  return db.one(sql.type(jobRow)`
    /* insertJob */
    INSERT INTO jobs (id, kind, input) VALUES (${job.id}, ${job.kind}, ${sql.jsonb(job.input)})
    RETURNING ${jobColumns}`);
}

export async function findJobById(db: CommonQueryMethods, id: string): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* findJobById */
    SELECT ${jobColumns} FROM jobs WHERE id = ${id}`);
}

/** Newest first, keyset-paginated on (created_at, id); asks for one row more than `limit` to know if more follow. */
export async function listJobs(
  db: CommonQueryMethods,
  filter: { statuses: readonly JobStatus[] | null; kind: string | null; after: JobCursor | null; limit: number },
): Promise<readonly Job[]> {
  const conditions = [sql.fragment`TRUE`];
  if (filter.statuses) conditions.push(sql.fragment`status = ANY(${sql.array(filter.statuses, 'text')})`);
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

/**
 * Takes up to `limit` of the oldest queued jobs for this process, in one statement (one commit for a batch
 * of free slots, rather than one per slot). FOR UPDATE SKIP LOCKED lets several processes claim at once
 * without waiting on each other and without two of them ever taking the same row; the outer status check
 * re-runs on each locked row. Returned oldest first.
 */
export async function claimNextJobs(db: CommonQueryMethods, workerId: number, limit: number): Promise<readonly Job[]> {
  const jobs = await db.any(sql.type(jobRow)`
    /* claimNextJobs */
    UPDATE jobs SET status = 'running', attempt = attempt + 1, worker_id = ${workerId},
      started_at = clock_timestamp(), progress = NULL
    WHERE id IN (
      SELECT id FROM jobs WHERE status = 'queued'
      ORDER BY created_at, id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ) AND status = 'queued'
    RETURNING ${jobColumns}`);
  // UPDATE … RETURNING does not keep the subquery's order.
  return [...jobs].sort((a, b) => (a.createdAt === b.createdAt ? a.id.localeCompare(b.id) : a.createdAt < b.createdAt ? -1 : 1));
}

// The finishing statements are guarded by the claim (worker and attempt) they were made under: if the job
// was recovered as interrupted meanwhile, or claimed again, a late finish changes nothing and returns null.
type Claim = { id: string; workerId: number; attempt: number };
const claimed = (claim: Claim) =>
  sql.fragment`id = ${claim.id} AND status = 'running' AND worker_id = ${claim.workerId} AND attempt = ${claim.attempt}`;

export async function completeJob(db: CommonQueryMethods, claim: Claim, result: JsonValue): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* completeJob */
    UPDATE jobs SET status = 'completed', result = ${sql.jsonb(result)}, progress = 1, finished_at = clock_timestamp()
    WHERE ${claimed(claim)}
    RETURNING ${jobColumns}`);
}

export async function failJob(db: CommonQueryMethods, claim: Claim, error: { code: string; message: string }): Promise<Job | null> {
  return db.maybeOne(sql.type(jobRow)`
    /* failJob */
    UPDATE jobs SET status = 'failed', error = ${error.message}, error_code = ${error.code}, finished_at = clock_timestamp()
    WHERE ${claimed(claim)}
    RETURNING ${jobColumns}`);
}

export async function updateJobProgress(db: CommonQueryMethods, claim: Claim, progress: number): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    /* updateJobProgress */
    UPDATE jobs SET progress = ${progress} WHERE ${claimed(claim)}`);
  return result.rowCount === 1;
}

/** Graceful stop: whatever this process still runs after the grace period is failed as interrupted. */
export async function failInterruptedJobsOfWorker(db: CommonQueryMethods, workerId: number): Promise<readonly string[]> {
  return db.anyFirst(sql.type(jobRow.pick({ id: true }))`
    /* failInterruptedJobsOfWorker */
    UPDATE jobs SET status = 'failed', error_code = 'INTERRUPTED', error = ${INTERRUPTED_MESSAGE}, finished_at = clock_timestamp()
    WHERE status = 'running' AND worker_id = ${workerId}
    RETURNING id`);
}

/**
 * Recovery: fails the running jobs of every process that is gone. A live process holds the session advisory
 * lock (namespace, worker_id) on its own connection for as long as it lives, and PostgreSQL releases it the
 * moment that session ends (crash, SIGKILL, OOM kill, lost network). So if this transaction can take the lock,
 * its owner is dead: no timeout to wait for, and a live process's jobs are never touched. The xact lock is
 * held until commit, so two processes recovering at once do not both act on the same worker.
 */
export async function failJobsOfDeadWorkers(db: CommonQueryMethods): Promise<readonly string[]> {
  return db.anyFirst(sql.type(jobRow.pick({ id: true }))`
    /* failJobsOfDeadWorkers */
    WITH running_workers AS MATERIALIZED (
      SELECT DISTINCT worker_id FROM jobs WHERE status = 'running'
    ), dead_workers AS MATERIALIZED (
      SELECT worker_id FROM running_workers
      WHERE pg_try_advisory_xact_lock(${WORKER_LOCK_NAMESPACE}, worker_id)
    )
    UPDATE jobs SET status = 'failed', error_code = 'INTERRUPTED', error = ${INTERRUPTED_MESSAGE}, finished_at = clock_timestamp()
    FROM dead_workers
    WHERE jobs.status = 'running' AND jobs.worker_id = dead_workers.worker_id
    RETURNING jobs.id`);
}

/** The job's states after `afterRevision`, oldest first: what a subscriber positioned there has not seen yet. */
export async function listJobEventsAfter(
  db: CommonQueryMethods,
  id: string,
  afterRevision: number,
  limit: number,
): Promise<readonly Job[]> {
  return db.any(sql.type(jobRow)`
    /* listJobEventsAfter */
    SELECT ${eventColumns} FROM job_events e JOIN jobs j ON j.id = e.job_id
    WHERE e.job_id = ${id} AND e.revision > ${afterRevision}
    ORDER BY e.revision
    LIMIT ${limit}`);
}

/** Jobs as they were at the given revisions, in the order asked (pairs whose event was pruned are skipped). */
export async function listJobEventsAt(db: CommonQueryMethods, pairs: readonly { id: string; revision: number }[]): Promise<readonly Job[]> {
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
    JOIN jobs j ON j.id = e.job_id
    ORDER BY wanted.position`);
}

/** Every change recorded since `since` (an ISO timestamp), oldest first: a listener outage replayed. */
export async function listJobEventsSince(db: CommonQueryMethods, since: string, limit: number): Promise<readonly Job[]> {
  return db.any(sql.type(jobRow)`
    /* listJobEventsSince */
    SELECT ${eventColumns} FROM job_events e JOIN jobs j ON j.id = e.job_id
    WHERE e.recorded_at >= ${since}::timestamptz
    ORDER BY e.recorded_at, e.job_id, e.revision
    LIMIT ${limit}`);
}

/** Current revisions of the given jobs; ids that do not exist are absent. The cheap backstop of NOTIFY. */
export async function findJobRevisions(
  db: CommonQueryMethods,
  ids: readonly string[],
): Promise<readonly { id: string; revision: number }[]> {
  return db.any(sql.type(jobRow.pick({ id: true, revision: true }))`
    /* findJobRevisions */
    SELECT id, revision FROM jobs WHERE id = ANY(${sql.array(ids, 'uuid')})`);
}

/**
 * Deletes event rows older than `olderThanMs`, a batch at a time so that no lock is held for long. A
 * subscriber that resumes from a pruned revision gets the current row instead (see job-hub.ts).
 */
export async function pruneJobEvents(db: CommonQueryMethods, olderThanMs: number, batchSize: number): Promise<number> {
  const result = await db.query(sql.unsafe`
    /* pruneJobEvents */
    DELETE FROM job_events WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM job_events
      WHERE recorded_at < clock_timestamp() - make_interval(secs => ${olderThanMs / 1000})
      LIMIT ${batchSize}
    ))`);
  return result.rowCount;
}
