import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { DatabaseTimeouts } from '../config.ts';
import { withApplicationName } from '../db/database.ts';
import { DEFAULT_DATABASE_TIMEOUTS, endClient, pgClientTimeouts } from '../db/timeouts.ts';
import {
  deregisterWorker,
  lockWorkerId,
  nextWorkerId,
  recordWorkerHeartbeat,
  registerWorker,
  setSessionKeepalives,
} from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';

/**
 * A tag for every database connection of this process (application_name `<tag>:<role>`), recorded in its
 * workers row, so that the sessions of a process declared dead can be found and terminated.
 */
export function newSessionTag(): string {
  return `jobql:${randomBytes(6).toString('hex')}`;
}

/**
 * The process's own database session: it holds the session advisory lock that tells every other process
 * "worker N is connected", and writes the heartbeat (workers.heartbeat_at) that tells them "worker N answers".
 * It is outside slonik's pool because a session lock needs one session that stays open for the life of the
 * process; never put it behind a transaction-mode pooler (PgBouncer, Supavisor).
 */
export type WorkerSession = {
  workerId: number;
  /** Resolves when the session ends for any reason other than close(): the lock is gone with it. */
  lost: Promise<Error>;
  /**
   * Whether this process may act as this worker now: the database answered one of its heartbeats less than
   * two thirds of the lease ago (by this process's monotonic clock). After a freeze it is false until the next
   * heartbeat is answered, so the process claims nothing before it knows whether it was declared dead.
   */
  isTrusted: () => boolean;
  /** Deletes the workers row and ends the session (which releases the lock). */
  close: () => Promise<void>;
  /** Ends a lost session without writing anything (its row is gone, or goes when the next session opens). */
  abandon: () => Promise<void>;
};

/**
 * `leaseMs` bounds how long a process may go without proving it answers: the heartbeat is written every third
 * of it. PostgreSQL also probes this session with TCP keepalives, so a process that vanished without closing
 * its socket (power loss, network cut) loses its session, and its lock, within about the lease.
 */
export async function openWorkerSession(options: {
  databaseUrl: string;
  leaseMs: number;
  sessionTag: string;
  /** A worker id this process gave up when its previous session was lost: its row goes too. */
  replaces: number | null;
  /** The kinds this process runs (none for an API-only process), recorded in its row for the metrics. */
  kinds?: readonly string[];
  /** Called when the session becomes trusted again after a freeze. */
  onTrusted: () => void;
  timeouts?: DatabaseTimeouts;
}): Promise<WorkerSession> {
  const { databaseUrl, leaseMs, sessionTag, timeouts = DEFAULT_DATABASE_TIMEOUTS } = options;
  const probeSeconds = Math.max(1, Math.floor(leaseMs / 4000));
  const client = new pg.Client({
    connectionString: withApplicationName(databaseUrl, `${sessionTag}:session`),
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
    const workerId = await nextWorkerId(client);
    await setSessionKeepalives(client, probeSeconds);
    // Held until this session ends (see lockWorkerId).
    await lockWorkerId(client, workerId);
    const registeredAt = performance.now();
    await registerWorker(client, workerId, sessionTag, options.kinds ?? []);
    if (options.replaces !== null) await deregisterWorker(client, options.replaces);
    logger.info('worker session open', { workerId, sessionTag });
    const heartbeat = startHeartbeat({ client, workerId, leaseMs, confirmedAt: registeredAt, reportLoss, onTrusted: options.onTrusted });
    void lost.then(() => heartbeat.stop());
    return {
      workerId,
      lost,
      isTrusted: heartbeat.isTrusted,
      close: async () => {
        closing = true;
        heartbeat.stop();
        // A stopping process says so at once rather than leaving a row to go stale; bounded, so that a database
        // that does not answer cannot hold up shutdown.
        const bound = new AbortController();
        await Promise.race([
          deregisterWorker(client, workerId).catch(() => {}),
          sleep(2000, undefined, { signal: bound.signal }).catch(() => {}),
        ]);
        bound.abort();
        await endClient(client);
      },
      abandon: async () => {
        closing = true;
        heartbeat.stop();
        await endClient(client);
      },
    };
  } catch (error) {
    closing = true;
    await endClient(client);
    throw error;
  }
}

/**
 * Writes the heartbeat every third of the lease. The row gone means another process judged this one dead
 * (and has ended its jobs); an answer that does not come within half the lease means the link is dead even if
 * the socket has not said so. Both are a lost session.
 */
function startHeartbeat(options: {
  client: pg.Client;
  workerId: number;
  leaseMs: number;
  confirmedAt: number;
  reportLoss: (error: Error) => void;
  onTrusted: () => void;
}) {
  const { client, workerId, leaseMs, reportLoss } = options;
  let confirmedAt = options.confirmedAt;
  let pendingSince: number | null = null;
  let stopped = false;
  const isTrusted = () => !stopped && performance.now() - confirmedAt < (leaseMs * 2) / 3;
  const beat = () => {
    if (pendingSince !== null) {
      // After a freeze this timer fires before the answer waiting in the socket is read: look again once this
      // turn of the event loop has read its input.
      if (performance.now() - pendingSince > leaseMs / 2) {
        setImmediate(() => {
          if (pendingSince !== null && !stopped) reportLoss(new Error('worker session heartbeat unanswered'));
        });
      }
      return;
    }
    const sentAt = performance.now();
    pendingSince = sentAt;
    recordWorkerHeartbeat(client, workerId).then(
      (registered) => {
        pendingSince = null;
        if (stopped) return;
        if (!registered) {
          reportLoss(new Error('this process was declared dead by another: it had not written its heartbeat for JOB_LEASE_MS'));
          return;
        }
        const wasTrusted = isTrusted();
        confirmedAt = sentAt;
        if (!wasTrusted) options.onTrusted();
      },
      (error: Error) => {
        if (!stopped) reportLoss(error);
      },
    );
  };
  const timer = setInterval(beat, Math.max(100, Math.floor(leaseMs / 3)));
  return {
    isTrusted,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/**
 * Keeps a worker session open for the life of the process, API-only processes included (their listener
 * must be terminated too when they stop answering). When a session is lost, this process's claims are void
 * (other processes may already have ended its jobs): the `onLost` handlers run, and only then a new session
 * opens under a new worker id.
 */
export type WorkerPresence = {
  /** The open session, or null while it is being replaced. */
  session: () => WorkerSession | null;
  /** Runs (and is awaited) after a session is lost, before the next one opens. */
  onLost: (handler: (lost: WorkerSession, error: Error) => Promise<void>) => void;
  /** Called when a session opens, or becomes trusted again after a freeze: a time to claim work. */
  onReady: (handler: () => void) => void;
  /** The database is known to be back (the listener reconnected): reopen a lost session now, not after the delay. */
  retryNow: () => void;
  close: () => Promise<void>;
};

// While the database is away the session is reopened at least this often, so claiming resumes within about a
// second of its return even when no listener reconnect announces it (a hung link that came back).
const SESSION_RETRY_MAX_DELAY_MS = 1000;

export async function startWorkerPresence(options: {
  databaseUrl: string;
  leaseMs: number;
  sessionTag: string;
  /** The kinds this process runs, recorded in each of its sessions' rows. */
  kinds?: readonly string[];
  timeouts?: DatabaseTimeouts;
}): Promise<WorkerPresence> {
  const lostHandlers: Array<(lost: WorkerSession, error: Error) => Promise<void>> = [];
  const readyHandlers: Array<() => void> = [];
  const ready = () => {
    for (const handler of readyHandlers) handler();
  };
  const open = (replaces: number | null) =>
    openWorkerSession({
      databaseUrl: options.databaseUrl,
      leaseMs: options.leaseMs,
      sessionTag: options.sessionTag,
      replaces,
      kinds: options.kinds,
      onTrusted: ready,
      timeouts: options.timeouts,
    });
  let closing = false;
  // Ends the wait between attempts to reopen the session, when the database is known to be back.
  let retryNow = new AbortController();
  // The first session is opened before start returns, so a database that is down fails startup loudly.
  let current: WorkerSession | null = await open(null);

  async function supervise(first: WorkerSession): Promise<void> {
    let session: WorkerSession | null = first;
    let lostWorkerId: number | null = null;
    for (let failures = 0; !closing; ) {
      if (!session) {
        try {
          session = await open(lostWorkerId);
          if (closing) {
            // close() came while this one was opening: it must not outlive the process's stop.
            await session.close();
            return;
          }
          current = session;
          failures = 0;
          ready();
        } catch (error) {
          failures++;
          logger.error('could not open the worker session; retrying', { err: error, failures });
          await sleep(Math.min(SESSION_RETRY_MAX_DELAY_MS, 250 * 2 ** failures), undefined, { signal: retryNow.signal }).catch(() => {});
          retryNow = new AbortController();
          continue;
        }
      }
      const error = await session.lost;
      if (closing) return;
      current = null;
      await session.abandon();
      logger.warn('worker session lost', { workerId: session.workerId, err: error });
      for (const handler of lostHandlers) {
        await handler(session, error).catch((failure: unknown) => logger.error('handling a lost worker session failed', { err: failure }));
      }
      lostWorkerId = session.workerId;
      session = null;
    }
  }
  void supervise(current);
  return {
    session: () => current,
    onLost: (handler) => lostHandlers.push(handler),
    onReady: (handler) => readyHandlers.push(handler),
    retryNow: () => retryNow.abort(),
    close: async () => {
      closing = true;
      retryNow.abort();
      await current?.close();
      current = null;
    },
  };
}
