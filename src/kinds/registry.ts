import { z } from 'zod';
import type { JobKind } from './kind.ts';
import { type CompiledSchedule, compileSchedules } from './schedule.ts';

export class KindDefinitionError extends Error {}

const MAX_NAME_LENGTH = 100;

const policies = z.object({
  maxAttempts: z.number().int().min(1).max(100).optional(),
  timeoutMs: z.number().int().min(1).max(2_147_483_647).optional(),
  retryBackoffMs: z.number().int().min(0).max(86_400_000).optional(),
  concurrency: z.number().int().min(1).max(10_000).optional(),
});

/** The kinds one process knows: the only ones its API accepts and its runner claims. */
export type KindRegistry = {
  find: (name: string) => JobKind | undefined;
  /** Names, sorted. */
  names: () => string[];
  all: () => readonly JobKind[];
  list: () => KindDescription[];
  /** Every kind's schedule entries, checked and compiled (cron parsed, input checked against the schema). */
  schedules: () => readonly CompiledSchedule[];
};

/**
 * Checks the kinds (names non-empty, at most 100 characters, unique; policies in range) and indexes them by
 * name. A problem is a KindDefinitionError naming the kind and, for a duplicate, both definitions.
 */
export function createKindRegistry(kinds: readonly JobKind[]): KindRegistry {
  const byName = new Map<string, JobKind>();
  const schedules = new Map<string, CompiledSchedule[]>();
  for (const kind of kinds) {
    checkKind(kind);
    const earlier = byName.get(kind.name);
    if (earlier) {
      throw new KindDefinitionError(`two kinds are named ${JSON.stringify(kind.name)}: ${whereDefined(earlier)} and ${whereDefined(kind)}`);
    }
    byName.set(kind.name, kind);
    schedules.set(kind.name, compileKindSchedules(kind));
  }
  const names = [...byName.keys()].sort();
  return {
    find: (name) => byName.get(name),
    names: () => [...names],
    all: () => names.map((name) => byName.get(name) as JobKind),
    list: () => names.map((name) => describeKind(byName.get(name) as JobKind, schedules.get(name) ?? [])),
    schedules: () => names.flatMap((name) => schedules.get(name) ?? []),
  };
}

function checkKind(kind: JobKind): void {
  if (typeof kind !== 'object' || kind === null || typeof kind.name !== 'string') {
    throw new KindDefinitionError('a kind must be an object with a name (use defineKind)');
  }
  if (kind.name.trim() === '' || kind.name.length > MAX_NAME_LENGTH) {
    throw new KindDefinitionError(`kind name ${JSON.stringify(kind.name.slice(0, 120))} must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  if (typeof kind.handler !== 'function') throw new KindDefinitionError(`kind ${kind.name}: handler must be a function`);
  if (typeof kind.input?.safeParse !== 'function') throw new KindDefinitionError(`kind ${kind.name}: input must be a zod schema`);
  const checked = policies.safeParse(kind);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new KindDefinitionError(`kind ${kind.name}: ${issue?.path.join('.')} ${issue?.message ?? 'is invalid'}`);
  }
}

// A bad expression, time zone or input is a startup error naming the kind, not a schedule that never fires.
function compileKindSchedules(kind: JobKind): CompiledSchedule[] {
  try {
    return compileSchedules(kind);
  } catch (error) {
    throw new KindDefinitionError(`kind ${kind.name}: ${(error as Error).message}`);
  }
}

function whereDefined(kind: JobKind): string {
  return (kind as { definedAt?: string }).definedAt ?? 'a kind not made by defineKind';
}

/** What a client may know of a kind: its name, its input as JSON Schema, and the defaults its jobs get. */
export type KindDescription = {
  name: string;
  inputSchema: unknown;
  timeoutMs: number | null;
  maxAttempts: number;
  retryBackoffMs: number | null;
  concurrency: number | null;
  schedules: { cron: string; timezone: string; catchUp: boolean }[];
};

function describeKind(kind: JobKind, schedules: readonly CompiledSchedule[]): KindDescription {
  return {
    name: kind.name,
    inputSchema: inputSchemaOf(kind),
    timeoutMs: kind.timeoutMs ?? null,
    maxAttempts: kind.maxAttempts ?? 1,
    retryBackoffMs: kind.retryBackoffMs ?? null,
    concurrency: kind.concurrency ?? null,
    schedules: schedules.map(({ cron, timezone, catchUp }) => ({ cron, timezone, catchUp })),
  };
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
