import { z } from 'zod';
import { defineKind } from './kind.ts';

/** Completes at once with its input as the result. For smoke tests and demos. */
export const echo = defineKind({
  name: 'echo',
  input: z.json(),
  handler: async (input) => input,
});
