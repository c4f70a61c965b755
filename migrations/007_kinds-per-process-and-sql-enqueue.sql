-- Processes may run different sets of kinds (a worker pool per kind), and applications may enqueue from SQL,
-- inside their own transactions. Each process records the kinds it runs, so that a job no live process can
-- run is visible (metrics); each claim asks only for kinds the process has a handler for, per kind, through
-- an index that starts with the kind; jobql_create_job inserts a job under the same rules as the API.

ALTER TABLE workers ADD COLUMN kinds text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN workers.kinds IS
  'The kinds this process runs jobs of (its handlers); empty for an API-only process. A due queued job whose kind is in no row waits for a process that knows it (the jobql_jobs_queued_unknown_kind gauge).';

-- The claim picks per kind (a LIMIT per kind, for per-kind concurrency), so its index starts with the kind:
-- each kind's due jobs are one range in claim order, and a kind with nothing queued costs one index probe
-- however many jobs of other kinds wait. It replaces the claim index of migration 003.
CREATE INDEX jobs_claim_kind_order_idx ON jobs (kind, priority DESC, run_at, id) WHERE status = 'queued';
DROP INDEX jobs_claim_order_idx;

-- A kind's maxAttempts default lives in the code of the processes that run it, which SQL cannot see. A job
-- enqueued through SQL without maxAttempts is marked, and the first claim (by a process that knows the kind,
-- as every claim is) replaces max_attempts with that kind's default.
ALTER TABLE jobs ADD COLUMN max_attempts_from_kind boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN jobs.max_attempts_from_kind IS
  'True for a job enqueued by jobql_create_job without maxAttempts and not yet claimed: max_attempts (1 until then) becomes the kind''s default at the first claim.';

-- A whole-number option of jobql_create_job, checked as the API checks it; NULL when absent.
CREATE FUNCTION jobql_create_job_int_option(options jsonb, name text, min_value bigint, max_value bigint)
RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  value jsonb := options -> name;
BEGIN
  IF value IS NULL OR value = 'null'::jsonb THEN
    RETURN NULL;
  END IF;
  IF jsonb_typeof(value) <> 'number' OR value::text::numeric <> trunc(value::text::numeric)
     OR value::text::numeric NOT BETWEEN min_value AND max_value THEN
    RAISE EXCEPTION 'jobql_create_job: option % must be a whole number from % to %, not %', name, min_value, max_value, value
      USING ERRCODE = '22023';
  END IF;
  RETURN value::text::numeric::integer;
END
$$;

-- A text option of jobql_create_job of 1 to max_length characters; NULL when absent.
CREATE FUNCTION jobql_create_job_text_option(options jsonb, name text, max_length integer)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  value jsonb := options -> name;
BEGIN
  IF value IS NULL OR value = 'null'::jsonb THEN
    RETURN NULL;
  END IF;
  IF jsonb_typeof(value) <> 'string' OR length(value #>> '{}') NOT BETWEEN 1 AND max_length THEN
    RAISE EXCEPTION 'jobql_create_job: option % must be a string of 1 to % characters, not %', name, max_length, value
      USING ERRCODE = '22023';
  END IF;
  RETURN value #>> '{}';
END
$$;

-- Enqueues a job from SQL, in the caller's transaction: rolled back, no job; committed, the existing triggers
-- have recorded its first revision and NOTIFY wakes the runners and subscribers at commit. The checks are
-- the API's (createJob), except the kind's input schema, which only the processes that run the kind know:
-- a runner fails a job whose input its kind rejects with BAD_INPUT, without retrying it. The options are
-- those of createJob (idempotencyKey, runAt, priority, maxAttempts, timeoutMs) plus tenant ('default', the
-- open-mode tenant, when absent). A bad option raises SQLSTATE 22023 and writes nothing.
CREATE FUNCTION jobql_create_job(kind text, input jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  opts jsonb := coalesce(jobql_create_job.options, '{}'::jsonb);
  job_input jsonb := coalesce(jobql_create_job.input, '{}'::jsonb);
  unknown_option text;
  job_tenant text;
  job_key text;
  job_max_attempts integer;
  job_run_at timestamptz;
  run_at_text text;
  created uuid;
  holder record;
BEGIN
  IF jobql_create_job.kind IS NULL OR jobql_create_job.kind = '' OR length(jobql_create_job.kind) > 100 THEN
    RAISE EXCEPTION 'jobql_create_job: kind must be 1 to 100 characters' USING ERRCODE = '22023';
  END IF;
  IF jsonb_typeof(opts) <> 'object' THEN
    RAISE EXCEPTION 'jobql_create_job: options must be a JSON object, not %', opts USING ERRCODE = '22023';
  END IF;
  SELECT key INTO unknown_option FROM jsonb_object_keys(opts) AS key
  WHERE key <> ALL (ARRAY['idempotencyKey', 'runAt', 'priority', 'maxAttempts', 'timeoutMs', 'tenant']) LIMIT 1;
  IF unknown_option IS NOT NULL THEN
    RAISE EXCEPTION 'jobql_create_job: unknown option "%"; known: idempotencyKey, runAt, priority, maxAttempts, timeoutMs, tenant',
      unknown_option USING ERRCODE = '22023';
  END IF;
  -- The API's limit on input size (MAX_INPUT_BYTES); jsonb itself cannot hold a NUL character.
  IF octet_length(job_input::text) > 524288 THEN
    RAISE EXCEPTION 'jobql_create_job: input is % bytes; at most 524288 are accepted', octet_length(job_input::text)
      USING ERRCODE = '22023';
  END IF;
  job_tenant := coalesce(jobql_create_job_text_option(opts, 'tenant', 100), 'default');
  job_key := jobql_create_job_text_option(opts, 'idempotencyKey', 200);
  job_max_attempts := jobql_create_job_int_option(opts, 'maxAttempts', 1, 100);
  run_at_text := jobql_create_job_text_option(opts, 'runAt', 100);
  IF run_at_text IS NOT NULL THEN
    -- ISO-8601 as the API's DateTime takes it (not PostgreSQL's 'now', 'tomorrow' or 'infinity'), years 0001-9999.
    IF run_at_text !~ '^\d{4}-\d\d-\d\d' THEN
      RAISE EXCEPTION 'jobql_create_job: option runAt must be an ISO-8601 timestamp, not %', run_at_text USING ERRCODE = '22023';
    END IF;
    BEGIN
      job_run_at := run_at_text::timestamptz;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'jobql_create_job: option runAt must be an ISO-8601 timestamp, not %', run_at_text USING ERRCODE = '22023';
    END;
  END IF;

  INSERT INTO jobs (id, tenant, kind, input, max_attempts, max_attempts_from_kind, priority, run_at, timeout_ms, idempotency_key)
  VALUES (gen_random_uuid(), job_tenant, jobql_create_job.kind, job_input, coalesce(job_max_attempts, 1), job_max_attempts IS NULL,
          coalesce(jobql_create_job_int_option(opts, 'priority', -1000, 1000), 0), coalesce(job_run_at, clock_timestamp()),
          jobql_create_job_int_option(opts, 'timeoutMs', 1, 604800000), job_key)
  ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id INTO created;
  IF created IS NOT NULL THEN
    RETURN created;
  END IF;
  -- The key is taken (the unique index decided, race-proof as in the API): the same request (kind and input,
  -- compared as jsonb) gets the job that holds it; another request is a conflict.
  SELECT j.id, (j.kind = jobql_create_job.kind AND j.input = job_input) AS same_request INTO holder
  FROM jobs j WHERE j.tenant = job_tenant AND j.idempotency_key = job_key;
  IF holder.id IS NULL THEN
    RAISE EXCEPTION 'jobql_create_job: idempotencyKey % is taken by a job this transaction cannot see', job_key
      USING ERRCODE = '40001';
  END IF;
  IF NOT holder.same_request THEN
    RAISE EXCEPTION 'jobql_create_job: idempotencyKey % was used for a job with another kind or input (job %)', job_key, holder.id
      USING ERRCODE = '23505', CONSTRAINT = 'jobs_tenant_idempotency_key_idx';
  END IF;
  RETURN holder.id;
END
$$;

COMMENT ON FUNCTION jobql_create_job(text, jsonb, jsonb) IS
  'Enqueues a job in the caller''s transaction and returns its id. options: idempotencyKey, runAt (ISO-8601), priority (-1000..1000), maxAttempts (1..100; the kind''s default when absent), timeoutMs (the kind''s default when absent), tenant (''default''). A bad option raises SQLSTATE 22023.';
