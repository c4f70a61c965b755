import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { DatabaseTimeouts } from '../config.ts';
import { withApplicationName } from '../db/database.ts';
import { DEFAULT_DATABASE_TIMEOUTS, endClient, pgClientTimeouts } from '../db/timeouts.ts';
import { logger } from '../logger.ts';
import { CHANGE_CHANNELS, type JobChange, parseJobChanges } from './change-payload.ts';

const RECONNECT_MAX_DELAY_MS = 1000;

export type Listener = {
  /** Called for every job a change notification names (a notification may name many: one call each, in order). */
  onChange: (handler: (change: JobChange) => void) => void;
  /** Called when the connection drops. */
  onLost: (handler: () => void) => void;
  /** Called after the connection came back: notifications sent meanwhile are lost, so re-read what matters. */
  onReconnect: (handler: () => void) => void;
  close: () => Promise<void>;
};

/**
 * The process's one LISTEN connection, fanned out in memory. It is outside slonik's pool because slonik has
 * no LISTEN API; it must be a direct session (not a transaction-mode pooler). NOTIFY is a hint, not a log:
 * when the connection drops it reconnects with backoff and tells its users to re-read the rows they watch.
 */
export async function startListener(
  databaseUrl: string,
  applicationName = 'jobql listener',
  timeouts: DatabaseTimeouts = DEFAULT_DATABASE_TIMEOUTS,
): Promise<Listener> {
  const changeHandlers: Array<(change: JobChange) => void> = [];
  const reconnectHandlers: Array<() => void> = [];
  const lostHandlers: Array<() => void> = [];
  let closing = false;
  let client: pg.Client | null = null;

  const connect = async (): Promise<{ lost: Promise<unknown> }> => {
    // Named after the process's session tag: a process declared dead has this connection terminated, which
    // frees its place in the notification queue (a stalled listener holds the queue's tail for everyone).
    const next = new pg.Client({
      connectionString: withApplicationName(databaseUrl, applicationName),
      keepAlive: true,
      ...pgClientTimeouts(timeouts),
    });
    const lost = new Promise((resolve) => {
      next.on('error', resolve);
      next.on('end', () => resolve(new Error('listener connection ended')));
    });
    next.on('notification', (message) => {
      for (const change of parseJobChanges(message.channel, message.payload)) {
        for (const handler of changeHandlers) handler(change);
      }
    });
    await next.connect();
    // Both channels: the per-statement one of migration 009 and the per-row one before it, so that this
    // process hears every change whichever triggers the database has (see change-payload.ts).
    for (const channel of CHANGE_CHANNELS) await next.query(`LISTEN ${channel}`);
    client = next;
    return { lost };
  };

  const supervise = async (first: { lost: Promise<unknown> }) => {
    let current: { lost: Promise<unknown> } | null = first;
    for (let failures = 0; !closing; ) {
      if (!current) {
        try {
          current = await connect();
          failures = 0;
          logger.info('listener reconnected');
          for (const handler of reconnectHandlers) handler();
        } catch (error) {
          failures++;
          logger.warn('listener could not reconnect; retrying', { err: error, failures });
          // At most a second apart: the reconnect is what tells the runner and the subscribers that the database
          // is back, so it must come soon after; one connection attempt a second is no load on a database.
          await sleep(Math.min(RECONNECT_MAX_DELAY_MS, 100 * 2 ** failures));
          continue;
        }
      }
      const error = await current.lost;
      if (closing) return;
      logger.warn('listener connection lost; reconnecting', { err: error });
      for (const handler of lostHandlers) handler();
      const dead = client;
      client = null;
      if (dead) await endClient(dead);
      current = null;
    }
  };

  void supervise(await connect());
  return {
    onChange: (handler) => changeHandlers.push(handler),
    onLost: (handler) => lostHandlers.push(handler),
    onReconnect: (handler) => reconnectHandlers.push(handler),
    close: async () => {
      closing = true;
      if (client) await endClient(client);
    },
  };
}
