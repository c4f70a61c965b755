-- Live status: a revision per job that counts the changes a client can see, a short-lived log of each
-- revision's state (so a subscriber gets every change in order, with no gap, and can resume after a
-- reconnect), and one NOTIFY per change carrying ids and revisions only.

ALTER TABLE jobs ADD COLUMN revision integer NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD CONSTRAINT jobs_revision_check CHECK (revision >= 1);
COMMENT ON COLUMN jobs.revision IS
  'Counts changes a client can see (status, progress, result, error); bookkeeping such as worker_id does not count. Maintained by the jobs_bump_revision trigger only.';

CREATE TABLE job_events (
  job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  revision    integer     NOT NULL,
  status      text        NOT NULL,
  progress    double precision,
  result      jsonb,
  error       text,
  error_code  text,
  attempt     integer     NOT NULL,
  updated_at  timestamptz NOT NULL,
  started_at  timestamptz,
  finished_at timestamptz,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT job_events_pkey PRIMARY KEY (job_id, revision)
);
COMMENT ON TABLE job_events IS
  'The state of a job at each revision, kept for a short while (the service prunes rows older than an hour) so that subscribers receive every change in order and can resume; jobs stays the truth.';
-- Pruning by age, and replaying what dashboards missed while a listener was disconnected.
CREATE INDEX job_events_recorded_at_idx ON job_events (recorded_at);

CREATE FUNCTION jobs_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status
     OR NEW.progress IS DISTINCT FROM OLD.progress
     OR NEW.result IS DISTINCT FROM OLD.result
     OR NEW.error IS DISTINCT FROM OLD.error
     OR NEW.error_code IS DISTINCT FROM OLD.error_code THEN
    NEW.revision := OLD.revision + 1;
  ELSE
    NEW.revision := OLD.revision;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER jobs_bump_revision BEFORE UPDATE ON jobs
  FOR EACH ROW EXECUTE FUNCTION jobs_bump_revision();

-- Records the new revision and tells every process. NOTIFY is delivered at commit, and only if the
-- transaction commits; the payload stays far below NOTIFY's 8000-byte limit (kind is at most 100 characters).
CREATE FUNCTION jobs_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_events (job_id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at, finished_at)
  VALUES (NEW.id, NEW.revision, NEW.status, NEW.progress, NEW.result, NEW.error, NEW.error_code, NEW.attempt, NEW.updated_at, NEW.started_at, NEW.finished_at);
  PERFORM pg_notify('jobql_job_changed',
    json_build_object('id', NEW.id, 'revision', NEW.revision, 'status', NEW.status, 'kind', NEW.kind)::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_record_insert AFTER INSERT ON jobs
  FOR EACH ROW EXECUTE FUNCTION jobs_record_change();
CREATE TRIGGER jobs_record_update AFTER UPDATE ON jobs
  FOR EACH ROW WHEN (NEW.revision <> OLD.revision) EXECUTE FUNCTION jobs_record_change();

-- The per-change notification also wakes runners (status queued), so the statement-level one is redundant.
DROP TRIGGER jobs_notify_queued ON jobs;
DROP FUNCTION jobs_notify_queued();
