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

/** A job kind: a name, the schema its input must satisfy at createJob, and the handler that runs it. */
export type JobKind<Schema extends z.ZodType = z.ZodType> = {
  name: string;
  input: Schema;
  /** Default timeout of this kind's jobs (a job's own timeoutMs wins); none when absent. */
  timeoutMs?: number;
  handler: (input: z.output<Schema>, ctx: JobContext) => Promise<JsonValue | undefined>;
};

/** Keeps the handler's input typed by the schema; use it to declare a kind. */
export function defineKind<Schema extends z.ZodType>(kind: JobKind<Schema>): JobKind<Schema> {
  return kind;
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
