import type pg from 'pg';
import type { DatabaseTimeouts } from '../config.ts';

export const DEFAULT_DATABASE_TIMEOUTS: DatabaseTimeouts = { statementMs: 30_000, connectMs: 5000 };

// A server that is slow ends a statement itself at statement_timeout, with a proper error. A server (or link) that
// hangs answers nothing at all, so the client gives up too, a moment later: pg's query_timeout.
const CLIENT_MARGIN_MS = 1000;

/** The timeouts every pg.Client of this process gets (listener, worker session, migrations, database creation). */
export function pgClientTimeouts(
  timeouts: DatabaseTimeouts = DEFAULT_DATABASE_TIMEOUTS,
): Pick<pg.ClientConfig, 'connectionTimeoutMillis' | 'statement_timeout' | 'query_timeout'> {
  return {
    connectionTimeoutMillis: timeouts.connectMs,
    statement_timeout: timeouts.statementMs,
    query_timeout: timeouts.statementMs + CLIENT_MARGIN_MS,
  };
}

/**
 * Ends a pg client without waiting on a database that does not answer: end() says goodbye and waits for the
 * server to close, which a hung server never does. Past `boundMs` the socket is destroyed (pg has no public way).
 */
export async function endClient(client: pg.Client, boundMs = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), boundMs);
  });
  const inTime = await Promise.race([ended, late]);
  clearTimeout(timer);
  if (!inTime) (client as unknown as { connection?: { stream?: { destroy: () => void } } }).connection?.stream?.destroy();
}
