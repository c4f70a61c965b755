import type { ServerResponse } from 'node:http';
import type { RateLimit } from '../config.ts';
import { sendError } from './respond.ts';

export type RateLimiter = {
  /** Takes one request from `tenant`'s allowance: null when allowed, else the milliseconds until one is. */
  take: (tenant: string) => number | null;
};

/**
 * A token bucket per tenant, in this process's memory: it protects this process from one tenant's flood, so N
 * processes behind a load balancer let a tenant through at up to N times the rate (a shared limit would cost a
 * database round trip per request). A bucket holds `requests` tokens and refills at `requests` per `perMs`;
 * tenants come from the configured keys, so the map is bounded.
 */
export function createRateLimiter(limit: RateLimit | null, now: () => number = performance.now.bind(performance)): RateLimiter {
  if (!limit) return { take: () => null };
  const perMs = limit.requests / limit.perMs;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take: (tenant) => {
      const time = now();
      const bucket = buckets.get(tenant) ?? { tokens: limit.requests, at: time };
      bucket.tokens = Math.min(limit.requests, bucket.tokens + (time - bucket.at) * perMs);
      bucket.at = time;
      buckets.set(tenant, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return null;
      }
      return Math.ceil((1 - bucket.tokens) / perMs);
    },
  };
}

/** Whole seconds for a Retry-After header: at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * For an HTTP request (GraphQL, SSE or REST): true when `tenant` is over its rate and the request was answered
 * 429 RATE_LIMITED with Retry-After; false when it may go on.
 */
export function refuseOverRate(limiter: RateLimiter, tenant: string, res: ServerResponse, graphql: boolean): boolean {
  const waitMs = limiter.take(tenant);
  if (waitMs === null) return false;
  const seconds = retryAfterSeconds(waitMs);
  res.setHeader('retry-after', String(seconds));
  sendError(res, 429, 'RATE_LIMITED', `too many requests for this tenant; retry in ${seconds} s`, graphql);
  return true;
}
