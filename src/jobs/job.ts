import { z } from 'zod';
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-check.ts';

export const jobStatuses = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const terminalStatuses: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

// Timestamps come from SQL as ISO-8601 strings in UTC with microseconds (see jobColumns in job-queries.ts):
// slonik would otherwise turn them into millisecond numbers, and keyset cursors need the full precision.
const timestamp = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

/**
 * What a row holds instead of its JSON when that JSON nests deeper than MAX_JSON_DEPTH: the API never stores
 * such a value, but SQL (or a version before the limit) can. Reading it as is would overflow the stack in the
 * recursive code that handles JSON, so it is set aside here: reads show it as null with an error, and the
 * runner fails its job with BAD_INPUT instead of running it.
 */
export class UnreadableJson {
  readonly message = `nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects; it cannot be read`;
}

// Checked without recursion (z.json() recurses, and a deep enough stored value overflowed the stack while a
// row was parsed: after a claim had committed, or in any read of the row).
const storedJson = z
  .unknown()
  .transform((value): JsonValue | UnreadableJson => (nestsDeeperThan(value, MAX_JSON_DEPTH) ? new UnreadableJson() : (value as JsonValue)));

/** A row of `jobs` as every job query returns it. */
export const jobRow = z.object({
  id: z.uuid(),
  tenant: z.string(),
  kind: z.string(),
  status: z.enum(jobStatuses),
  input: storedJson,
  result: storedJson,
  error: z.string().nullable(),
  errorCode: z.string().nullable(),
  progress: z.number().nullable(),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  priority: z.number().int(),
  timeoutMs: z.number().int().nullable(),
  revision: z.number().int(),
  workerId: z.number().int().nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
  startedAt: timestamp.nullable(),
  finishedAt: timestamp.nullable(),
  runAt: timestamp,
  cancelRequestedAt: timestamp.nullable(),
  idempotencyKey: z.string().nullable(),
});

export type Job = z.infer<typeof jobRow>;
export type JsonValue = z.infer<ReturnType<typeof z.json>>;
