import { afterAll, beforeAll } from '@jest/globals';
import { type App, startApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { demoKinds } from '../../src/kinds/demo.ts';
import type { JobKind } from '../../src/kinds/kind.ts';
import { setLogLevel } from '../../src/logger.ts';
import type { TestDatabaseHandle } from './database.ts';

export type TestApp = App & { url: string };

/** Settings to change, by group: `{ runner: { concurrency: 0 }, auth: { apiKeys: [...] } }`. */
export type ConfigOverrides = DeepPartial<Config>;

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** The real app, in this process, on a free port, against the given database, with `kinds` (the demo kinds by default). */
export async function startTestApp(
  databaseUrl: string,
  overrides: ConfigOverrides = {},
  kinds: readonly JobKind[] = demoKinds,
): Promise<TestApp> {
  setLogLevel((process.env.LOG_LEVEL as Config['log']['level'] | undefined) ?? 'silent');
  const config = loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1' });
  const app = await startApp(withOverrides(withOverrides(config, { runner: { pollIntervalMs: 200 } }), overrides), { kinds });
  if (app.url === null) throw new Error('startTestApp serves HTTP; use startApp for worker-only');
  return app as TestApp;
}

/** `config` with `overrides` merged in: groups field by field; anything else (a value, an array, null) replaced. */
export function withOverrides(config: Config, overrides: ConfigOverrides): Config {
  return merge(config, overrides) as Config;
}

function merge(base: unknown, overrides: unknown): unknown {
  if (!isGroup(base) || !isGroup(overrides)) return overrides === undefined ? base : overrides;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) merged[key] = merge(merged[key], value);
  return merged;
}

function isGroup(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Registers beforeAll/afterAll for startTestApp against `db` (a useTestDatabase handle): started before the
 * block's tests, stopped after them and always before the database is dropped. The handle can be used at once;
 * its fields work inside hooks and tests.
 */
export function useTestApp(db: TestDatabaseHandle, overrides: ConfigOverrides = {}, kinds: readonly JobKind[] = demoKinds): TestApp {
  let app: TestApp | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= app?.stop() ?? Promise.resolve();
    return stopped;
  };
  const current = (): TestApp => {
    if (!app) throw new Error('useTestApp: the app runs only inside hooks and tests');
    return app;
  };
  beforeAll(async () => {
    app = await startTestApp(db.url, overrides, kinds);
  });
  // Jest runs afterAll hooks in the order they were declared, so the database's (declared first) would drop it
  // under a running app: both ask for the one stop.
  afterAll(stop);
  db.beforeDrop(stop);
  return {
    get url() {
      return current().url;
    },
    get metricsUrl() {
      return current().metricsUrl;
    },
    get databaseUrl() {
      return current().databaseUrl;
    },
    jobsFor: (tenant) => current().jobsFor(tenant),
    stop,
  };
}
