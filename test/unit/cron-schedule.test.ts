import { expect, test } from '@jest/globals';
import { z } from 'zod';
import { defineKind } from '../../src/kinds/kind.ts';
import { createKindRegistry, KindDefinitionError } from '../../src/kinds/registry.ts';
import { type CompiledSchedule, dueTicks, MAX_TICKS_PER_PASS } from '../../src/kinds/schedule.ts';

// Schedules are checked when the registry is built (a startup error naming the kind), and what is due is
// computed from a last tick and the database's clock: pure logic, tested here without a database.
const report = (schedule: object[]) =>
  defineKind({ name: 'report', input: z.strictObject({ region: z.string() }), handler: async () => null, schedule: schedule as never });

const startupError = (schedule: object[]) => {
  try {
    createKindRegistry([report(schedule)]);
  } catch (error) {
    expect(error).toBeInstanceOf(KindDefinitionError);
    return (error as Error).message;
  }
  throw new Error('the registry accepted the schedule');
};

test('an invalid cron expression, time zone, input or a duplicate entry is a startup error naming the kind', () => {
  expect(startupError([{ cron: '61 * * * *', input: { region: 'eu' } }])).toBe(
    'kind report: schedule[0]: invalid cron expression "61 * * * *": Invalid value for minute: 61',
  );
  expect(startupError([{ cron: '* * * *', input: { region: 'eu' } }])).toMatch(
    /^kind report: schedule\[0\]: invalid cron expression "\* \* \* \*"/,
  );
  // A 7th (year) field is croner's, not cron's.
  expect(startupError([{ cron: '0 0 0 1 1 * 2030', input: { region: 'eu' } }])).toMatch(
    /^kind report: schedule\[0\]: invalid cron expression/,
  );
  expect(startupError([{ cron: '0 0 31 2 *', input: { region: 'eu' } }])).toBe(
    'kind report: schedule[0]: cron expression "0 0 31 2 *" never fires',
  );
  expect(startupError([{ cron: '* * * * *', input: { region: 'eu' }, timezone: 'Mars/Olympus' }])).toMatch(
    /^kind report: schedule\[0\]: unknown time zone "Mars\/Olympus"/,
  );
  expect(startupError([{ cron: '* * * * *' }])).toMatch(/^kind report: schedule\[0\]: input does not match the kind's schema: at region: /);
  expect(
    startupError([
      { cron: '* * * * *', input: { region: 'eu' } },
      { cron: '*  *  * * *', input: { region: 'eu' } },
    ]),
  ).toBe('kind report: schedule[1]: the same cron, timezone and input as an earlier entry');
  expect(startupError([{ cron: '* * * * *', input: { region: 'eu' }, tenant: '' }])).toMatch(/tenant must be 1 to 100 characters/);
});

test('valid schedules compile: 5 fields, 6 with seconds, a time zone; Query.kinds shows their expressions', () => {
  const registry = createKindRegistry([
    report([
      { cron: '*/5 * * * *', input: { region: 'eu' } },
      { cron: '*/5 * * * *', input: { region: 'us' } },
      { cron: '30 * * * * *', input: { region: 'eu' }, timezone: 'Europe/Berlin', catchUp: true },
    ]),
  ]);
  const schedules = registry.schedules();
  expect(schedules.map(({ kind, cron, timezone, catchUp, tenant }) => ({ kind, cron, timezone, catchUp, tenant }))).toEqual([
    { kind: 'report', cron: '*/5 * * * *', timezone: 'UTC', catchUp: false, tenant: 'default' },
    { kind: 'report', cron: '*/5 * * * *', timezone: 'UTC', catchUp: false, tenant: 'default' },
    { kind: 'report', cron: '30 * * * * *', timezone: 'Europe/Berlin', catchUp: true, tenant: 'default' },
  ]);
  // Entries that differ only by input have different keys; the key does not depend on the input's key order.
  expect(new Set(schedules.map((s) => s.key)).size).toBe(3);
  const again = createKindRegistry([
    defineKind({
      name: 'report',
      input: z.object({}).passthrough(),
      handler: async () => null,
      schedule: [{ cron: '*/5 * * * *', input: { b: 1, a: 2 } }],
    }),
  ]);
  const reordered = createKindRegistry([
    defineKind({
      name: 'report',
      input: z.object({}).passthrough(),
      handler: async () => null,
      schedule: [{ cron: '*/5 * * * *', input: { a: 2, b: 1 } }],
    }),
  ]);
  expect(again.schedules()[0]?.key).toBe(reordered.schedules()[0]?.key);
  expect(registry.list()[0]?.schedules).toEqual([
    { cron: '*/5 * * * *', timezone: 'UTC', catchUp: false },
    { cron: '*/5 * * * *', timezone: 'UTC', catchUp: false },
    { cron: '30 * * * * *', timezone: 'Europe/Berlin', catchUp: true },
  ]);
});

const at = (iso: string) => new Date(iso).getTime();
const pattern = (cron: string, timezone = 'UTC') =>
  (createKindRegistry([report([{ cron, input: { region: 'eu' }, timezone }])]).schedules()[0] as CompiledSchedule).pattern;

test('due ticks: after the last one and up to now inclusive, oldest first', () => {
  const every5 = pattern('*/5 * * * *');
  const iso = (ticks: Date[]) => ticks.map((tick) => tick.toISOString());
  expect(iso(dueTicks(every5, at('2026-01-01T12:00:00Z'), at('2026-01-01T12:04:59.999Z')).ticks)).toEqual([]);
  expect(iso(dueTicks(every5, at('2026-01-01T12:00:00Z'), at('2026-01-01T12:05:00Z')).ticks)).toEqual(['2026-01-01T12:05:00.000Z']);
  expect(iso(dueTicks(every5, at('2026-01-01T12:00:00Z'), at('2026-01-01T12:17:00Z')).ticks)).toEqual([
    '2026-01-01T12:05:00.000Z',
    '2026-01-01T12:10:00.000Z',
    '2026-01-01T12:15:00.000Z',
  ]);
  // Seconds, and a time zone: 09:00 in Berlin is 08:00 UTC in winter.
  expect(iso(dueTicks(pattern('*/2 * * * * *'), at('2026-01-01T12:00:00Z'), at('2026-01-01T12:00:05Z')).ticks)).toEqual([
    '2026-01-01T12:00:02.000Z',
    '2026-01-01T12:00:04.000Z',
  ]);
  expect(iso(dueTicks(pattern('0 9 * * *', 'Europe/Berlin'), at('2026-01-01T00:00:00Z'), at('2026-01-02T00:00:00Z')).ticks)).toEqual([
    '2026-01-01T08:00:00.000Z',
  ]);
});

test('due ticks are bounded: only the most recent MAX_TICKS_PER_PASS, and it says some were skipped', () => {
  const everyMinute = pattern('* * * * *');
  const { ticks, skipped } = dueTicks(everyMinute, at('2026-01-01T00:00:00Z'), at('2026-01-01T12:00:30Z'));
  expect(MAX_TICKS_PER_PASS).toBe(100);
  expect(ticks).toHaveLength(100);
  expect(skipped).toBe(true);
  expect(ticks[99]?.toISOString()).toBe('2026-01-01T12:00:00.000Z');
  expect(ticks[0]?.toISOString()).toBe('2026-01-01T10:21:00.000Z');
  expect(dueTicks(everyMinute, at('2026-01-01T11:00:00Z'), at('2026-01-01T12:40:00Z')).skipped).toBe(false);
});
