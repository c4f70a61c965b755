import { logger } from '../logger.ts';

/**
 * A small upkeep service that deletes rows in batches (each a short transaction), on its own timer, in every
 * process: job retention and event-log pruning. `deleteBatch` deletes at most `batch` rows and says how many;
 * a pass goes on while batches come back full. A retention of 0 keeps everything.
 */
export function startPeriodicDeletion(options: {
  what: string;
  retentionMs: number;
  batch: number;
  intervalMs: number;
  /** Whether to run a pass at start rather than after the first interval. */
  runAtStart: boolean;
  deleteBatch: (retentionMs: number, batch: number) => Promise<number>;
}) {
  let stopped = false;
  async function runOnce(): Promise<number> {
    if (options.retentionMs <= 0) return 0;
    let deleted = 0;
    try {
      for (let count = options.batch; count === options.batch && !stopped; ) {
        count = await options.deleteBatch(options.retentionMs, options.batch);
        deleted += count;
      }
      if (deleted > 0) logger.info(`deleted ${options.what} past their retention`, { count: deleted });
    } catch (error) {
      logger.warn(`could not delete ${options.what}; will retry`, { err: error });
    }
    return deleted;
  }
  const timer = setInterval(() => void runOnce(), options.intervalMs);
  if (options.runAtStart) void runOnce();
  return {
    /** One pass now; resolves to the number of rows deleted. */
    runOnce,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
