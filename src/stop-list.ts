import { logger } from './logger.ts';

export type Part = { name: string; stop: () => unknown };

/**
 * The started parts of a process, in start order, so that a graceful stop and a failed start tear down the
 * same parts in the same order: the reverse of start. Each step's error is logged and the remaining steps
 * still run, so that one failing close cannot leave the pool or the embedded PostgreSQL running.
 */
export type StopList = {
  /** Records a part that has just started. */
  add: (name: string, stop: () => unknown) => void;
  /**
   * Keeps a place in the order for a part that starts later but must stop after the parts registered
   * between now and then (the exceptions to reverse-of-start); `fill` gives it its stop once it has started.
   * A place never filled is skipped.
   */
  reserve: (name: string) => { fill: (stop: () => unknown) => void };
  /** Stops every part, last started first; resolves once all steps ran. Idempotent. */
  stopAll: () => Promise<void>;
};

export function createStopList(): StopList {
  const parts: Part[] = [];
  let stopped: Promise<void> | null = null;
  return {
    add: (name, stop) => {
      parts.push({ name, stop });
    },
    reserve: (name) => {
      const part: Part = { name, stop: () => {} };
      parts.push(part);
      return {
        fill: (stop) => {
          part.stop = stop;
        },
      };
    },
    stopAll: () => {
      stopped ??= (async () => {
        for (const part of [...parts].reverse()) {
          try {
            await part.stop();
          } catch (error) {
            logger.error('a part failed to stop; stopping the rest', { part: part.name, err: error });
          }
        }
      })();
      return stopped;
    },
  };
}
