-- Liveness means answering, not merely connected. A process stopped with SIGSTOP (or blocked by a CPU-bound
-- handler, a VM pause, a debugger) keeps its TCP connections, so its advisory lock stays held and its LISTEN
-- connection stops draining the notification queue. Each process therefore proves it is alive by writing a
-- heartbeat from its own event loop; one that has not done so for JOB_LEASE_MS (judged by the database's
-- clock) is treated as dead by the others: its row is deleted, its sessions are terminated and its running
-- jobs are recovered.

CREATE TABLE workers (
  id           integer     PRIMARY KEY,
  session_tag  text        NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT workers_session_tag_check CHECK (session_tag ~ '^jobql:[0-9a-f]{12}$')
);

COMMENT ON TABLE workers IS
  'One row per live process (API-only ones included) under its current worker id; deleted when it stops, or by another process once its heartbeat is older than the lease.';
COMMENT ON COLUMN workers.id IS
  'The worker id, from jobs_worker_id_seq: the key of the advisory lock the process holds and jobs.worker_id of the jobs it runs. A process that loses its session comes back under a new one.';
COMMENT ON COLUMN workers.session_tag IS
  'Every database connection of the process (lock session, listener, pool) has application_name ''<session_tag>:<role>'', so that the sessions of a process declared dead can be terminated. Kept across the process''s worker ids.';
COMMENT ON COLUMN workers.heartbeat_at IS
  'Written by the process itself every JOB_LEASE_MS/3, with the database''s clock (now()); older than the lease means the process does not answer.';
