-- Scale of data (issue 13): with 10,000 jobs scheduled for later, a claim or an idle runner's "when is the next
-- one due?" must not pass over all of them. The claim's index (kind, priority, run_at, id) is ordered by
-- priority first, so "due by now" cannot bound a scan of a kind's range in it. Ordered by (status, kind,
-- run_at), the unfinished jobs of one kind are one range in due order: its first entry says whether anything
-- of the kind is due (the claim checks that before it reads the claim index), and the first entry after now
-- is when the next one falls due (findNextRunAt). It replaces jobs_unfinished_idx (status, run_at) of
-- migration 005, which the gauges and job stats read the same way (by status), and which the planner preferred
-- for those lookups when it was there, reading every due job of every kind in run_at order to find one of
-- the kind it wanted.
CREATE INDEX jobs_unfinished_kind_idx ON jobs (status, kind, run_at) WHERE status IN ('queued', 'running');
DROP INDEX jobs_unfinished_idx;
