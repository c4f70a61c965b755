import { z } from 'zod';

export const jobStatuses = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const terminalStatuses: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

// Timestamps come from SQL as ISO-8601 strings in UTC with microseconds (see jobColumns in job-queries.ts):
// slonik would otherwise turn them into millisecond numbers, and keyset cursors need the full precision.
const timestamp = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

/** A row of `jobs` as every job query returns it. */
export const jobRow = z.object({
  id: z.uuid(),
  tenant: z.string(),
  kind: z.string(),
  status: z.enum(jobStatuses),
  input: z.json(),
  result: z.json().nullable(),
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
