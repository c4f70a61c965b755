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
