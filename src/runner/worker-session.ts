import pg from 'pg';
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

export async function openWorkerSession(databaseUrl: string): Promise<WorkerSession> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'jobql worker session', keepAlive: true });
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
    // Held until this session ends; nothing else ever unlocks it (see failJobsOfDeadWorkers).
    await client.query('SELECT pg_advisory_lock($1, $2)', [WORKER_LOCK_NAMESPACE, workerId]);
    logger.info('worker session open', { workerId });
    return {
      workerId,
      lost,
      close: async () => {
        closing = true;
        await client.end().catch(() => {});
      },
    };
  } catch (error) {
    closing = true;
    await client.end().catch(() => {});
    throw error;
  }
}
