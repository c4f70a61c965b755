-- The one table that holds every job the API ever accepted. A restarted process answers from here.
CREATE TABLE jobs (
  id          uuid        PRIMARY KEY,
  kind        text        NOT NULL,
  status      text        NOT NULL DEFAULT 'queued',
  input       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  result      jsonb,
  error       text,
  error_code  text,
  progress    double precision,
  attempt     integer     NOT NULL DEFAULT 0,
  worker_id   integer,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at  timestamptz,
  finished_at timestamptz,
  CONSTRAINT jobs_status_check CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  CONSTRAINT jobs_kind_check CHECK (kind <> '' AND length(kind) <= 100),
  CONSTRAINT jobs_progress_check CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1)),
  CONSTRAINT jobs_attempt_check CHECK (attempt >= 0),
  -- A running job always names the process that runs it; recovery depends on it.
  CONSTRAINT jobs_running_has_worker_check CHECK (status <> 'running' OR (worker_id IS NOT NULL AND started_at IS NOT NULL)),
  CONSTRAINT jobs_finished_has_time_check CHECK (status NOT IN ('completed', 'failed', 'cancelled') OR finished_at IS NOT NULL),
  CONSTRAINT jobs_failed_has_error_check CHECK (status <> 'failed' OR (error IS NOT NULL AND error_code IS NOT NULL))
);

COMMENT ON COLUMN jobs.worker_id IS
  'Process that runs the job: the key of the session advisory lock (pg_advisory_lock(jobql namespace, worker_id)) that process holds while alive. A running job whose lock nobody holds belongs to a dead process.';
COMMENT ON COLUMN jobs.attempt IS
  'How many times the job has been claimed; the finishing UPDATE is guarded by (worker_id, attempt) so a late finish from a process that lost its claim changes nothing.';

-- The runner claims the oldest queued job; a partial index keeps that lookup small however many finished jobs pile up.
CREATE INDEX jobs_queued_fifo_idx ON jobs (created_at, id) WHERE status = 'queued';
-- Recovery looks for running jobs by process.
CREATE INDEX jobs_running_worker_idx ON jobs (worker_id) WHERE status = 'running';
-- The jobs list: newest first, keyset on (created_at, id), optionally by status and kind.
CREATE INDEX jobs_list_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_list_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_kind_list_idx ON jobs (kind, created_at DESC, id DESC);

-- Process ids: each process takes one at startup and holds the matching advisory lock for its life.
CREATE SEQUENCE jobs_worker_id_seq AS integer MINVALUE 1 CYCLE;

CREATE FUNCTION jobs_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END
$$;

CREATE TRIGGER jobs_touch_updated_at BEFORE UPDATE ON jobs
  FOR EACH ROW EXECUTE FUNCTION jobs_touch_updated_at();

-- Wakes idle runners of every process when jobs are queued. One notification per statement; NOTIFY is a
-- hint only: runners also poll slowly, so a lost notification delays a job, never loses it.
CREATE FUNCTION jobs_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('jobql_job_queued', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_queued AFTER INSERT ON jobs
  FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_queued();
