import { setTimeout as wait } from 'node:timers/promises';
import { z } from 'zod';
import { defineKind } from './kind.ts';

const STEPS = 20;

/** Sleeps for `ms`, reporting progress as it goes; stops early when its signal fires. */
export const sleep = defineKind({
  name: 'sleep',
  input: z.strictObject({ ms: z.number().int().min(0).max(3_600_000) }),
  handler: async ({ ms }, ctx) => {
    for (let step = 1; step <= STEPS; step++) {
      await wait(ms / STEPS, undefined, { signal: ctx.signal });
      ctx.progress(step / STEPS);
    }
    return { sleptMs: ms };
  },
});
