import pg from 'pg';
import type { DatabaseTimeouts } from '../config.ts';
import { DEFAULT_DATABASE_TIMEOUTS, endClient, pgClientTimeouts } from '../db/timeouts.ts';
import { WORKER_LOCK_NAMESPACE } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';

/**
 * The runner's own database session: it holds the session advisory lock that tells every other process
 * "worker N is alive". It is outside slonik's pool because a session lock needs one session that stays open
 * for the life of the process; never put it behind a transaction-mode pooler (PgBouncer, Supavisor).
 */
export type WorkerSession = {
  workerId: number;
  /** Resolves when the session ends for any reason other than close(): the lock is gone with it. */
  lost: Promise<Error>;
  close: () => Promise<void>;
};

/**
 * `leaseMs` bounds how long a dead process can keep its lock: PostgreSQL probes this session with TCP
 * keepalives so that a process that vanished without closing its socket (power loss, network cut) is found
 * dead and its session ended within about the lease; a heartbeat query finds a dead link from this side too.
 */
export async function openWorkerSession(
  databaseUrl: string,
  leaseMs: number,
  timeouts: DatabaseTimeouts = DEFAULT_DATABASE_TIMEOUTS,
): Promise<WorkerSession> {
  const probeSeconds = Math.max(1, Math.floor(leaseMs / 4000));
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'jobql worker session',
    keepAlive: true,
    keepAliveInitialDelayMillis: probeSeconds * 1000,
    ...pgClientTimeouts(timeouts),
  });
  let closing = false;
  let reportLoss: (error: Error) => void = () => {};
  const lost = new Promise<Error>((resolve) => {
    reportLoss = resolve;
  });
  client.on('error', (error) => {
    if (!closing) reportLoss(error);
  });
  client.on('end', () => {
    if (!closing) reportLoss(new Error('worker session ended'));
  });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: number }>(`SELECT nextval('jobs_worker_id_seq')::int AS id`);
    const workerId = (rows[0] as { id: number }).id;
    // Idle probes after probeSeconds, then every probeSeconds, three tries: the server ends a dead peer's
    // session (and releases its lock) within about 4 × probeSeconds ≈ the lease.
    await client.query(
      `SELECT set_config('tcp_keepalives_idle', $1, false), set_config('tcp_keepalives_interval', $1, false),
              set_config('tcp_keepalives_count', '3', false)`,
      [String(probeSeconds)],
    );
    // Held until this session ends; nothing else ever unlocks it (see recoverJobsOfDeadWorkers).
    await client.query('SELECT pg_advisory_lock($1, $2)', [WORKER_LOCK_NAMESPACE, workerId]);
    logger.info('worker session open', { workerId });
    // A heartbeat unanswered for half the lease means the link is dead even if the socket has not said so.
    let pendingSince: number | null = null;
    const heartbeat = setInterval(() => {
      if (pendingSince !== null) {
        if (Date.now() - pendingSince > leaseMs / 2 && !closing) reportLoss(new Error('worker session heartbeat unanswered'));
        return;
      }
      pendingSince = Date.now();
      client.query('SELECT 1').then(
        () => {
          pendingSince = null;
        },
        (error: Error) => {
          if (!closing) reportLoss(error);
        },
      );
    }, probeSeconds * 1000);
    void lost.then(() => clearInterval(heartbeat));
    return {
      workerId,
      lost,
      close: async () => {
        closing = true;
        clearInterval(heartbeat);
        await endClient(client);
      },
    };
  } catch (error) {
    closing = true;
    await endClient(client);
    throw error;
  }
}
