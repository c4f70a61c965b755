import { setTimeout as wait } from 'node:timers/promises';
import { z } from 'zod';
import { defineKind } from './kind.ts';

const STEPS = 20;

/**
 * Sleeps for `ms`, reporting progress as it goes; stops early when its signal fires, unless `ignoreSignal`
 * (a handler that does not cooperate, to see timeouts and cancels take its slot back anyway).
 */
export const sleep = defineKind({
  name: 'sleep',
  input: z.strictObject({ ms: z.number().int().min(0).max(3_600_000), ignoreSignal: z.boolean().optional() }),
  handler: async ({ ms, ignoreSignal }, ctx) => {
    for (let step = 1; step <= STEPS; step++) {
      await wait(ms / STEPS, undefined, ignoreSignal ? {} : { signal: ctx.signal });
      ctx.progress(step / STEPS);
    }
    return { sleptMs: ms };
  },
});
