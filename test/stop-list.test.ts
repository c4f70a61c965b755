import { beforeAll, expect, test } from '@jest/globals';
import { loadConfig } from '../src/config.ts';
import { setLogLevel } from '../src/logger.ts';
import { createStopList } from '../src/stop-list.ts';

// The list's own behaviour, with fake parts: app.ts's real parts are covered by the process tests (shutdown,
// embedded Ctrl-C, database outage).
beforeAll(() => setLogLevel((process.env.LOG_LEVEL as 'info' | undefined) ?? 'silent'));

test('parts stop in reverse start order, and a part whose stop throws or rejects does not keep the later ones from stopping', async () => {
  const stopped: string[] = [];
  const parts = createStopList();
  parts.add('database pool', () => stopped.push('pool'));
  parts.add('listener', async () => {
    stopped.push('listener');
    throw new Error('the listener would not close');
  });
  parts.add('hub', () => {
    stopped.push('hub');
    throw new Error('the hub threw synchronously');
  });
  parts.add('runner', async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    stopped.push('runner');
  });
  await expect(parts.stopAll()).resolves.toBeUndefined();
  expect(stopped).toEqual(['runner', 'hub', 'listener', 'pool']);
});

test('a reserved place stops where it was reserved, once filled; unfilled, it is skipped; stopAll runs once', async () => {
  const stopped: string[] = [];
  const parts = createStopList();
  parts.add('pool', () => stopped.push('pool'));
  const web = parts.reserve('web: close');
  const never = parts.reserve('never started');
  parts.add('hub', () => stopped.push('hub'));
  web.fill(() => stopped.push('web'));
  parts.add('stop accepting', () => stopped.push('stop accepting'));
  void never;
  await Promise.all([parts.stopAll(), parts.stopAll()]);
  expect(stopped).toEqual(['stop accepting', 'hub', 'web', 'pool']);
});

test('EVENT_LOG_RETENTION takes the duration syntax of JOB_RETENTION and defaults to an hour', () => {
  expect(loadConfig({}).maintenance.eventLogRetentionMs).toBe(3_600_000);
  expect(loadConfig({ EVENT_LOG_RETENTION: '90m' }).maintenance.eventLogRetentionMs).toBe(90 * 60_000);
  expect(loadConfig({ EVENT_LOG_RETENTION: '0' }).maintenance.eventLogRetentionMs).toBe(0);
  expect(() => loadConfig({ EVENT_LOG_RETENTION: 'an hour' })).toThrow(/EVENT_LOG_RETENTION/);
});
