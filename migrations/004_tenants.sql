-- Tenant isolation: every job belongs to the tenant whose API key created it ('default' in open mode).
-- Every query a client can reach filters on it; idempotency keys are per tenant.

ALTER TABLE jobs ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD CONSTRAINT jobs_tenant_check CHECK (tenant <> '' AND length(tenant) <= 100);
COMMENT ON COLUMN jobs.tenant IS 'The tenant of the API key that created the job; no other tenant can see or touch it.';

DROP INDEX jobs_idempotency_key_idx;
CREATE UNIQUE INDEX jobs_tenant_idempotency_key_idx ON jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The jobs list is per tenant.
DROP INDEX jobs_list_idx;
DROP INDEX jobs_status_list_idx;
DROP INDEX jobs_kind_list_idx;
CREATE INDEX jobs_tenant_list_idx ON jobs (tenant, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_status_list_idx ON jobs (tenant, status, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_kind_list_idx ON jobs (tenant, kind, created_at DESC, id DESC);

-- Dashboards' jobsUpdated streams filter on the tenant without reading rows: it rides in the notification.
CREATE OR REPLACE FUNCTION jobs_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_events (job_id, revision, status, progress, result, error, error_code, attempt, updated_at, started_at,
                          finished_at, run_at, cancel_requested_at)
  VALUES (NEW.id, NEW.revision, NEW.status, NEW.progress, NEW.result, NEW.error, NEW.error_code, NEW.attempt, NEW.updated_at,
          NEW.started_at, NEW.finished_at, NEW.run_at, NEW.cancel_requested_at);
  PERFORM pg_notify('jobql_job_changed', json_build_object(
    'id', NEW.id, 'revision', NEW.revision, 'status', NEW.status, 'kind', NEW.kind, 'tenant', NEW.tenant,
    'cancel', NEW.cancel_requested_at IS NOT NULL)::text);
  RETURN NULL;
END
$$;
