import type { DatabasePool } from 'slonik';
import { pruneJobEvents } from '../jobs/job-queries.ts';
import { logger } from '../logger.ts';

// Upkeep of the event log, kept apart from the live machinery that reads it (a later step moves it beside
// recovery and retention). The log is only needed for live streams and resumes: keep an hour of it.

const EVENT_LOG_MS = 3_600_000;
const INTERVAL_MS = 60_000;
const BATCH = 1000;

export function startEventLogPruning(pool: DatabasePool): { stop: () => void } {
  let stopped = false;
  const prune = async () => {
    try {
      while (!stopped && (await pruneJobEvents(pool, EVENT_LOG_MS, BATCH)) === BATCH) {}
    } catch (error) {
      logger.warn('could not prune job events', { err: error });
    }
  };
  const timer = setInterval(() => void prune(), INTERVAL_MS);
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
