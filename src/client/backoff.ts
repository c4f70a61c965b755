import type { JobqlError } from './errors.ts';

// How long a watch waits before reconnecting: exponential from initialDelayMs up to maxDelayMs, with jitter so
// that the clients of a restarted server do not all come back in the same millisecond; at least what the
// server asked for when it rate-limited us (extensions.retryAfterSeconds).

export type ReconnectOptions = {
  /** The first wait, in ms. Default 250. */
  initialDelayMs?: number;
  /** The longest wait, in ms. Default 10000. */
  maxDelayMs?: number;
  /** Reconnects in a row (without an event between them) before the watch gives up and throws. Default: no limit. */
  maxAttempts?: number;
};

export type ReconnectPolicy = Required<ReconnectOptions>;

export function reconnectPolicy(options: ReconnectOptions = {}): ReconnectPolicy {
  return { initialDelayMs: 250, maxDelayMs: 10_000, maxAttempts: Number.POSITIVE_INFINITY, ...options };
}

/** The wait before reconnect number `attempt` (1, 2, …). */
export function reconnectDelay(policy: ReconnectPolicy, attempt: number, cause: JobqlError | null): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  const asked = cause?.extensions.retryAfterSeconds;
  return Math.round(typeof asked === 'number' ? Math.max(jittered, asked * 1000) : jittered);
}

/** Waits `ms`, or less when `signal` aborts (then it resolves: the caller checks the signal). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
