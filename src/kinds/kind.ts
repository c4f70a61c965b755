import type { z } from 'zod';
import type { JsonValue } from '../jobs/job.ts';

export type JobContext = {
  /** The job's id. */
  jobId: string;
  /** Which attempt this is, from 1. */
  attempt: number;
  /**
   * Fires when the job must stop: its timeout passed, it was cancelled, or the process is shutting down past
   * its grace period. Handlers should honour it; one that does not loses its slot shortly after anyway.
   */
  signal: AbortSignal;
  /** Reports progress as a fraction from 0 to 1. Cheap to call often: writes are coalesced. */
  progress: (fraction: number) => void;
};

/** One recurring entry of a kind: every tick of `cron` creates one job with `input`. */
export type KindSchedule = {
  /** Standard 5-field cron, or 6 fields with seconds first. */
  cron: string;
  /** The input of each tick's job (checked against the kind's schema at start). */
  input?: JsonValue;
  /** IANA time zone the cron expression is read in; UTC when absent. */
  timezone?: string;
  /** Create the ticks missed while no process ran (the most recent 100 at most); by default they are skipped. */
  catchUp?: boolean;
  /** The tenant that owns each tick's job; "default" (the open mode's tenant) when absent. */
  tenant?: string;
};

/** A job kind: a name, the schema its input must satisfy at createJob, the handler that runs it, and its policies. */
export type JobKind<Schema extends z.ZodType = z.ZodType> = {
  name: string;
  input: Schema;
  handler: (input: z.output<Schema>, ctx: JobContext) => Promise<JsonValue | undefined>;
  // Policies: defaults for this kind's jobs; a job's own value (createJob's argument) wins.
  /** Attempts a job of this kind gets (1–100); 1 when absent. */
  maxAttempts?: number;
  /** Timeout of each attempt; none when absent. */
  timeoutMs?: number;
  /** Base of the exponential backoff between attempts; RETRY_BACKOFF_MS when absent. */
  retryBackoffMs?: number;
  /** The most jobs of this kind one process runs at once (WORKER_CONCURRENCY stays the process total). */
  concurrency?: number;
  /** Recurring jobs of this kind. */
  schedule?: readonly KindSchedule[];
};

// A brand rather than `instanceof`: the CLI loads kinds folders that may import another copy of jobql.
const KIND = Symbol.for('jobql.kind');

/** A kind made by defineKind, with where it was defined (for the error when two kinds share a name). */
export type DefinedKind<Schema extends z.ZodType = z.ZodType> = JobKind<Schema> & { readonly definedAt: string };

/** Keeps the handler's input typed by the schema; use it to declare a kind. */
export function defineKind<Schema extends z.ZodType>(kind: JobKind<Schema>): DefinedKind<Schema> {
  const defined = { ...kind, definedAt: callerLocation() };
  Object.defineProperty(defined, KIND, { value: true });
  return defined;
}

/** Whether `value` was made by defineKind (of any copy of jobql). */
export function isKind(value: unknown): value is DefinedKind {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[KIND] === true;
}

// The file:line that called defineKind, read off a stack trace: "unknown" when the runtime gives none.
function callerLocation(): string {
  const line = new Error().stack?.split('\n')[3] ?? '';
  return /\((.*)\)$/.exec(line)?.[1] ?? line.replace(/^\s*at\s+/, '') ?? 'unknown';
}

/** Thrown by a handler to fail its job with a specific error code (anything else thrown fails it as JOB_FAILED). */
export class JobFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'JobFailure';
    this.code = code;
  }
}
