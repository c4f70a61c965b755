import { z } from 'zod';
import { defineKind, type JobKind } from '../../src/kinds/kind.ts';

/**
 * A kind for tests whose handlers wait until the test opens its gate (then they return at once), and that
 * counts how many of its jobs run at once in this process: `running`, and the most seen, `highest`.
 */
export type GatedKind = {
  kind: JobKind;
  running: () => number;
  highest: () => number;
  started: () => number;
  open: () => void;
};

export function gatedKind(name: string, policies: { concurrency?: number } = {}): GatedKind {
  let running = 0;
  let highest = 0;
  let started = 0;
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const kind = defineKind({
    name,
    input: z.strictObject({ n: z.number().int().optional() }),
    ...policies,
    handler: async ({ n }) => {
      running++;
      started++;
      highest = Math.max(highest, running);
      try {
        await gate;
        return { n: n ?? null };
      } finally {
        running--;
      }
    },
  });
  // As startApp takes kinds: a list of kinds with different inputs (JobKind's input is contravariant).
  return { kind: kind as unknown as JobKind, running: () => running, highest: () => highest, started: () => started, open: () => open() };
}
