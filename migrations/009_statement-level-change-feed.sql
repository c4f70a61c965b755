-- One NOTIFY per statement instead of one per changed row. A transaction that notified takes a cluster-wide lock
-- at commit and holds it through the commit's WAL flush, so notifying transactions cannot share a flush (the
-- drain's busy backends waited on it 80% of the time). The lock is taken once per transaction, but every
-- notification is written to the queue while it is held and read and parsed by every listening process: a
-- statement changing many jobs (a claim, a batch of completions, a recovery) now writes one or a few instead of
-- one per job, and its events in one INSERT instead of one per row. The change feed keeps
-- its meaning: every visible change still bumps the revision (gap-free per job), still records that revision's
-- state in job_events, and every process still hears of it, but a statement changing many jobs now writes its
-- events in one INSERT and sends them in as few notifications as the payload limit allows, on a new channel
-- (jobql_jobs_changed) whose payload lists jobs. Processes of the previous version listen on jobql_job_changed
-- only: during a rolling deploy they hear nothing and fall back on their polls (the runner's POLL_INTERVAL_MS,
-- the watches' LIVE_RECHECK_MS; their jobsUpdated feeds have none and stay quiet: see the README).

-- The two BEFORE UPDATE row triggers become one (one trigger call per row instead of two), same semantics:
-- updated_at is touched on every update; revision counts changes a client can see (as in 003: status,
-- progress, result, error, error_code, cancel_requested_at), bookkeeping such as worker_id does not count.
DROP TRIGGER jobs_bump_revision ON jobs;
DROP TRIGGER jobs_touch_updated_at ON jobs;
DROP FUNCTION jobs_bump_revision();
DROP FUNCTION jobs_touch_updated_at();

CREATE FUNCTION jobs_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := clock_timestamp();
  IF NEW.status IS DISTINCT FROM OLD.status
     OR NEW.progress IS DISTINCT FROM OLD.progress
     OR NEW.result IS DISTINCT FROM OLD.result
     OR NEW.error IS DISTINCT FROM OLD.error
     OR NEW.error_code IS DISTINCT FROM OLD.error_code
     OR NEW.cancel_requested_at IS DISTINCT FROM OLD.cancel_requested_at THEN
    NEW.revision := OLD.revision + 1;
  ELSE
    NEW.revision := OLD.revision;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER jobs_before_update BEFORE UPDATE ON jobs
  FOR EACH ROW EXECUTE FUNCTION jobs_before_update();

COMMENT ON COLUMN jobs.revision IS
  'Counts changes a client can see (status, progress, result, error, cancel request); bookkeeping such as worker_id does not count. Maintained by the jobs_before_update trigger only.';

-- The per-row AFTER triggers and their function go; statement-level ones with transition tables replace them.
DROP TRIGGER jobs_record_insert ON jobs;
DROP TRIGGER jobs_record_update ON jobs;
DROP FUNCTION jobs_record_change();

-- One job's entry in a notification: [id, revision, status, kind, tenant, cancel requested 1/0], compact JSON
-- (what the listener needs: the id and revision for the watches, status, kind and tenant for the feeds' filters
-- and the runner's wake-up, the cancel flag to stop a running handler). At most about 1,300 bytes: kind and
-- tenant are at most 100 characters each, which JSON escaping can make at most 600 bytes.
CREATE FUNCTION jobs_change_entry(id uuid, revision integer, status text, kind text, tenant text, cancel_requested_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT concat('["', id, '",', revision, ',', to_json(status), ',', to_json(kind), ',', to_json(tenant), ',',
                CASE WHEN cancel_requested_at IS NULL THEN 0 ELSE 1 END, ']')
$$;

-- Sends the entries as JSON arrays of entries on jobql_jobs_changed, as few notifications as fit: all in one when
-- they fit under 7,000 bytes (the common case: a claim, a batch of completions up to ~85 jobs, a single change);
-- otherwise an entry goes to chunk floor(its start offset / 5700), so a payload is at most 5700 + one entry
-- (~1,300) + 2 bytes, under 7,000 too, well below NOTIFY's 8000-byte limit. NOTIFY is delivered at commit, only if
-- the transaction commits. PostgreSQL drops a notification identical to one already sent in the transaction; two
-- payloads here never are (each names a job at a revision it reaches once).
CREATE FUNCTION jobs_notify_changes(entries text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  payload text;
BEGIN
  IF cardinality(entries) > 0 THEN
    payload := '[' || array_to_string(entries, ',') || ']';
    IF octet_length(payload) < 7000 THEN
      PERFORM pg_notify('jobql_jobs_changed', payload);
      RETURN;
    END IF;
  END IF;
  FOR payload IN
    SELECT '[' || string_agg(entry, ',' ORDER BY n) || ']'
    FROM (SELECT entry, n, (sum(octet_length(entry) + 1) OVER (ORDER BY n) - octet_length(entry) - 1) / 5700 AS chunk
          FROM unnest(entries) WITH ORDINALITY AS e (entry, n)) chunked
    GROUP BY chunk
    ORDER BY chunk
  LOOP
    PERFORM pg_notify('jobql_jobs_changed', payload);
  END LOOP;
END
$$;

-- Every inserted job is at its first revision: record it and tell every process (the runners wake on queued
-- jobs). One INSERT of events and one to a few NOTIFYs for the whole statement.
CREATE FUNCTION jobs_record_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  entries text[];
BEGIN
  WITH recorded AS (
    INSERT INTO job_events (job_id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at,
                            finished_at, run_at, cancel_requested_at)
    SELECT id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at, finished_at, run_at,
           cancel_requested_at
    FROM inserted_jobs
  )
  SELECT array_agg(jobs_change_entry(id, revision, status, kind, tenant, cancel_requested_at)) INTO entries FROM inserted_jobs;
  PERFORM jobs_notify_changes(entries);
  RETURN NULL;
END
$$;

-- Only rows whose revision moved (a visible change) are recorded and notified, as the row trigger's
-- WHEN (NEW.revision <> OLD.revision) did. The id is the primary key and never changes, so it pairs old and new.
CREATE FUNCTION jobs_record_updates() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  entries text[];
BEGIN
  WITH changed AS MATERIALIZED (
    SELECT n.id, n.revision, n.status, n.kind, n.tenant, n.progress, n.result, n.error, n.error_code, n.attempt,
           n.updated_at, n.started_at, n.finished_at, n.run_at, n.cancel_requested_at
    FROM updated_jobs n JOIN previous_jobs o ON o.id = n.id
    WHERE n.revision <> o.revision
  ), recorded AS (
    INSERT INTO job_events (job_id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at,
                            finished_at, run_at, cancel_requested_at)
    SELECT id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at, finished_at, run_at,
           cancel_requested_at
    FROM changed
  )
  SELECT array_agg(jobs_change_entry(id, revision, status, kind, tenant, cancel_requested_at)) INTO entries FROM changed;
  PERFORM jobs_notify_changes(entries);
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_record_inserts AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS inserted_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION jobs_record_inserts();
CREATE TRIGGER jobs_record_updates AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS previous_jobs NEW TABLE AS updated_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION jobs_record_updates();
