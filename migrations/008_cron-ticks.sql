-- Recurring jobs: one row per tick of a kind's schedule that created a job. The primary key is what makes a
-- tick create exactly one job however many processes run the schedule: each inserts the tick row and its job
-- in one statement, ON CONFLICT DO NOTHING, and only the statement that inserted the row inserts the job.

CREATE TABLE cron_ticks (
  kind         text        NOT NULL,
  schedule_key text        NOT NULL,
  tick_at      timestamptz NOT NULL,
  job_id       uuid        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT cron_ticks_pkey PRIMARY KEY (kind, schedule_key, tick_at),
  CONSTRAINT cron_ticks_kind_check CHECK (kind <> '' AND length(kind) <= 100),
  CONSTRAINT cron_ticks_schedule_key_check CHECK (schedule_key <> '' AND length(schedule_key) <= 500)
);

COMMENT ON TABLE cron_ticks IS
  'The ticks of kinds'' schedules that created a job. The newest row of each schedule is its last tick: missed ticks after it are skipped unless the schedule has catchUp. Older rows are pruned after a day; the newest of each schedule is kept.';
COMMENT ON COLUMN cron_ticks.schedule_key IS
  'Which entry of the kind''s schedule: its cron expression, time zone, tenant and a digest of its input, derived the same way by every process.';
COMMENT ON COLUMN cron_ticks.job_id IS
  'The job the tick created. No foreign key: job retention deletes finished jobs, and the tick must stay recorded.';

-- Pruning by age.
CREATE INDEX cron_ticks_tick_at_idx ON cron_ticks (tick_at);
