-- Scale of data (issue 13): with 10,000 jobs scheduled for later, a claim or an idle runner's "when is the next
-- one due?" must not pass over all of them. Ordered by (status, kind, run_at), a kind's queued jobs are one
-- range in due order: the claim reads a kind's due jobs of one priority as the start of that range, up to the
-- clock (or from the claim index's (kind, priority, run_at) range, whichever the planner prices lower; see
-- claimNextJobs), and findNextRunAt takes the first entry after the clock. It replaces jobs_unfinished_idx
-- (status, run_at) of migration 005, which the gauges and job stats read the same way (by status), and which
-- the planner otherwise chose for these per-kind lookups, reading every due job of every kind in run_at order
-- to find those of the kind it wanted.
CREATE INDEX jobs_unfinished_kind_idx ON jobs (status, kind, run_at) WHERE status IN ('queued', 'running');
DROP INDEX jobs_unfinished_idx;
