-- Production semantics: retries with backoff, timeouts, durable cancellation, idempotent creation,
-- scheduling and priority, and an index for retention.

ALTER TABLE jobs
  ADD COLUMN max_attempts integer NOT NULL DEFAULT 1,
  ADD COLUMN priority integer NOT NULL DEFAULT 0,
  ADD COLUMN run_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  ADD COLUMN timeout_ms integer,
  ADD COLUMN cancel_requested_at timestamptz,
  ADD COLUMN idempotency_key text,
  ADD CONSTRAINT jobs_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
  ADD CONSTRAINT jobs_priority_check CHECK (priority BETWEEN -1000 AND 1000),
  ADD CONSTRAINT jobs_timeout_ms_check CHECK (timeout_ms IS NULL OR timeout_ms > 0),
  ADD CONSTRAINT jobs_idempotency_key_check CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 200);

COMMENT ON COLUMN jobs.run_at IS 'The job is not started before this time: the creation time, a requested start, or a retry after backoff.';
COMMENT ON COLUMN jobs.cancel_requested_at IS
  'Set by cancelJob on a running job: the request survives a lost notification or a restart; the runner (or recovery) ends the job CANCELLED.';
COMMENT ON COLUMN jobs.error IS 'The last attempt''s error: the reason of a FAILED job, and kept as lastError when a retry or a success follows.';

-- Claim order: higher priority first, then the earliest due, FIFO among equals.
DROP INDEX jobs_queued_fifo_idx;
CREATE INDEX jobs_claim_order_idx ON jobs (priority DESC, run_at, id) WHERE status = 'queued';
-- A second createJob with the same key finds the first; the unique index makes that race-proof.
CREATE UNIQUE INDEX jobs_idempotency_key_idx ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Retention deletes finished jobs by age.
CREATE INDEX jobs_finished_at_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- A cancel request is a change a client can see (Job.cancelRequestedAt), and what tells the runner to stop.
CREATE OR REPLACE FUNCTION jobs_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

ALTER TABLE job_events
  ADD COLUMN run_at timestamptz,
  ADD COLUMN cancel_requested_at timestamptz;

CREATE OR REPLACE FUNCTION jobs_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_events (job_id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at,
                          finished_at, run_at, cancel_requested_at)
  VALUES (NEW.id, NEW.revision, NEW.status, NEW.progress, NEW.result, NEW.error, NEW.error_code, NEW.attempt, NEW.updated_at,
          NEW.started_at, NEW.finished_at, NEW.run_at, NEW.cancel_requested_at);
  PERFORM pg_notify('jobql_job_changed', json_build_object(
    'id', NEW.id, 'revision', NEW.revision, 'status', NEW.status, 'kind', NEW.kind,
    'cancel', NEW.cancel_requested_at IS NOT NULL)::text);
  RETURN NULL;
END
$$;
