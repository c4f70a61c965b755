import { z } from 'zod';
import { defineKind, JobFailure } from './kind.ts';

/** Fails its first `failures` attempts (code FLAKY), then completes with the attempt that succeeded. For retries. */
export const flaky = defineKind({
  name: 'flaky',
  input: z.strictObject({ failures: z.number().int().min(0).max(100) }),
  handler: async ({ failures }, ctx) => {
    if (ctx.attempt <= failures) throw new JobFailure('FLAKY', `attempt ${ctx.attempt} fails on purpose (${failures} of them will)`);
    return { succeededOnAttempt: ctx.attempt };
  },
});
