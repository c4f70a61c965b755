-- Large tables stay cheap: with a million finished jobs, the statements that run every scrape or every minute
-- (gauges, retention, event pruning) and the rare status-and-kind lists read only what they need. The
-- EXPLAIN output each gets is beside its query in src/jobs/job-queries.ts.

-- The gauges (countUnfinishedJobs) read unfinished jobs only: no index covered `status IN ('queued',
-- 'running')` (the partial ones each cover one status), so every scrape scanned the whole table.
CREATE INDEX jobs_unfinished_idx ON jobs (status, run_at) WHERE status IN ('queued', 'running');

-- The jobs list filtered on kind and status: a rare combination (FAILED jobs of a kind that mostly
-- completes) was read through the kind index, skipping every row of the kind.
CREATE INDEX jobs_tenant_kind_status_list_idx ON jobs (tenant, kind, status, created_at DESC, id DESC);

-- The planner estimates kind and status as independent, which makes a rare combination look common; the
-- joint most-common-values let it see how rare it is, and choose the index above.
CREATE STATISTICS jobs_tenant_kind_status_stats (mcv) ON tenant, kind, status FROM jobs;
