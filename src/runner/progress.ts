import { logger } from '../logger.ts';

const MIN_INTERVAL_MS = 100;

/**
 * Coalesces a handler's progress reports so that a handler calling progress() in a tight loop writes at most
 * about ten times a second; the last value reported is always written. Writes go one at a time, in order.
 */
export function createProgressWriter(write: (fraction: number) => Promise<unknown>) {
  let pending: number | null = null;
  let lastWriteAt = 0;
  let timer: NodeJS.Timeout | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;

  const flush = () => {
    timer = null;
    if (pending === null) return;
    const fraction = pending;
    pending = null;
    lastWriteAt = Date.now();
    chain = chain.then(() => write(fraction)).catch((error) => logger.warn('could not record progress', { err: error }));
  };

  return {
    report: (fraction: number) => {
      if (closed || typeof fraction !== 'number' || !Number.isFinite(fraction)) return;
      pending = Math.min(1, Math.max(0, fraction));
      if (timer) return;
      const wait = lastWriteAt + MIN_INTERVAL_MS - Date.now();
      if (wait <= 0) flush();
      else timer = setTimeout(flush, wait);
    },
    /** Writes what is pending and waits for the writes, so none lands after the job's final state. */
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      flush();
      await chain;
    },
  };
}
