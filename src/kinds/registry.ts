import { z } from 'zod';
import { echo } from './echo.ts';
import { fail } from './fail.ts';
import { flaky } from './flaky.ts';
import type { JobKind } from './kind.ts';
import { sleep } from './sleep.ts';

// Adding a kind: one file beside this one, and one line here.
const kinds: readonly JobKind[] = [echo, sleep, fail, flaky];

const byName = new Map(kinds.map((kind) => [kind.name, kind]));

export function findKind(name: string): JobKind | undefined {
  return byName.get(name);
}

export function kindNames(): string[] {
  return [...byName.keys()].sort();
}

/** What a client may know of a kind: its name, its input as JSON Schema, and the defaults its jobs get. */
export type KindDescription = { name: string; inputSchema: unknown; timeoutMs: number | null };

export function listKinds(): KindDescription[] {
  return kindNames().map((name) => {
    const kind = byName.get(name) as JobKind;
    return { name, inputSchema: inputSchemaOf(kind), timeoutMs: kind.timeoutMs ?? null };
  });
}

// zod's own converter; a schema it cannot express (a transform, a custom check) is described as null rather
// than failing the whole list.
function inputSchemaOf(kind: JobKind): unknown {
  try {
    return z.toJSONSchema(kind.input, { io: 'input' });
  } catch {
    return null;
  }
}
