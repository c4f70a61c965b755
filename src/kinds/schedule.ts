import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import type { JsonValue } from '../jobs/job.ts';
import type { JobKind, KindSchedule } from './kind.ts';

/** The most missed ticks one pass creates for a `catchUp: true` schedule: the most recent ones. */
export const MAX_TICKS_PER_PASS = 100;

const MAX_TENANT_LENGTH = 100;
const DEFAULT_TENANT = 'default';

/** One entry of a kind's schedule, checked and compiled: what the cron scheduler works from. */
export type CompiledSchedule = {
  kind: string;
  /**
   * Tells this entry's ticks from those of the kind's other entries, in cron_ticks: the expression, the time
   * zone and a digest of the input, so that every process running the same code derives the same key.
   */
  key: string;
  cron: string;
  timezone: string;
  catchUp: boolean;
  tenant: string;
  input: JsonValue;
  /** The kind's policies, applied like createJob's defaults. */
  maxAttempts: number;
  timeoutMs: number | null;
  /** The parsed expression (croner), read in `timezone`. */
  pattern: Cron;
};

/**
 * Checks and compiles a kind's schedule: every expression parses (5 fields, or 6 with seconds first) and fires
 * at least once, every time zone is a real IANA zone, every input passes the kind's schema, and no two entries
 * are the same. Throws an Error whose message the registry prefixes with the kind's name.
 */
export function compileSchedules(kind: JobKind): CompiledSchedule[] {
  const entries = kind.schedule ?? [];
  if (!Array.isArray(entries)) throw new Error('schedule must be an array of { cron, input?, timezone?, catchUp?, tenant? }');
  const compiled = entries.map((entry: KindSchedule, index) => {
    try {
      return compileOne(kind, entry);
    } catch (error) {
      throw new Error(`schedule[${index}]: ${(error as Error).message}`);
    }
  });
  const keys = new Set<string>();
  for (const [index, entry] of compiled.entries()) {
    if (keys.has(entry.key)) throw new Error(`schedule[${index}]: the same cron, timezone and input as an earlier entry`);
    keys.add(entry.key);
  }
  return compiled;
}

function compileOne(kind: JobKind, entry: KindSchedule): CompiledSchedule {
  if (typeof entry !== 'object' || entry === null || typeof entry.cron !== 'string') throw new Error('cron must be a string');
  const cron = entry.cron.trim().replace(/\s+/g, ' ');
  const timezone = entry.timezone ?? 'UTC';
  checkTimezone(timezone);
  let pattern: Cron;
  try {
    // 5 fields, or 6 with seconds first; croner's 7th (year) field is not standard cron and is refused.
    pattern = new Cron(cron, { timezone, mode: '5-or-6-parts' });
  } catch (error) {
    throw new Error(`invalid cron expression ${JSON.stringify(entry.cron)}: ${(error as Error).message.replace(/^CronPattern: /, '')}`);
  }
  if (pattern.nextRun() === null) throw new Error(`cron expression ${JSON.stringify(entry.cron)} never fires`);
  const tenant = entry.tenant ?? DEFAULT_TENANT;
  if (typeof tenant !== 'string' || tenant.trim() === '' || tenant.length > MAX_TENANT_LENGTH) {
    throw new Error(`tenant must be 1 to ${MAX_TENANT_LENGTH} characters`);
  }
  const input = (entry.input ?? {}) as JsonValue;
  const checked = kind.input.safeParse(input);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const at = issue?.path.length ? `at ${issue.path.join('.')}: ` : '';
    throw new Error(`input does not match the kind's schema: ${at}${issue?.message ?? 'invalid'}`);
  }
  const digest = createHash('sha256').update(canonicalJson(input)).digest('hex').slice(0, 12);
  return {
    kind: kind.name,
    key: `${cron} ${timezone} ${tenant} ${digest}`,
    cron,
    timezone,
    catchUp: entry.catchUp === true,
    tenant,
    input,
    maxAttempts: kind.maxAttempts ?? 1,
    timeoutMs: kind.timeoutMs ?? null,
    pattern,
  };
}

function checkTimezone(timezone: unknown): void {
  try {
    if (typeof timezone !== 'string') throw new Error();
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new Error(`unknown time zone ${JSON.stringify(timezone)} (an IANA name such as "Europe/Berlin" is expected)`);
  }
}

// JSON with object keys sorted, so that the key does not depend on how the input object was written.
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The ticks of `pattern` after `sinceMs` and at or before `nowMs`, oldest first; only the most recent `max`
 * when more are due (the older ones are skipped). Pure, so that it can be tested on its own.
 */
export function dueTicks(pattern: Cron, sinceMs: number, nowMs: number, max = MAX_TICKS_PER_PASS): { ticks: Date[]; skipped: boolean } {
  // Forward from the last tick: the usual pass finds one tick, or none, in a step or two.
  const ticks: Date[] = [];
  for (let tick = pattern.nextRun(new Date(sinceMs)); tick !== null && tick.getTime() <= nowMs; tick = pattern.nextRun(tick)) {
    if (ticks.length === max) {
      // More are due than one pass creates (a long downtime with catchUp): the most recent `max`, found
      // backwards from now; previousRuns excludes its reference, so one millisecond later includes `nowMs`.
      return { ticks: pattern.previousRuns(max, new Date(nowMs + 1)).reverse(), skipped: true };
    }
    ticks.push(tick);
  }
  return { ticks, skipped: false };
}
