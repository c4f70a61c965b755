import { z } from 'zod';
import { FailureCode } from '../jobs/failure-codes.ts';
import { defineKind, JobFailure } from './kind.ts';

/** Always fails, with code JOB_FAILED and the given message. For testing clients' error paths. */
export const fail = defineKind({
  name: 'fail',
  input: z.strictObject({ message: z.string().min(1).max(10_000) }),
  handler: async ({ message }) => {
    throw new JobFailure(FailureCode.JOB_FAILED, message);
  },
});
