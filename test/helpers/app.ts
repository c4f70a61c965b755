import { type App, startApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { setLogLevel } from '../../src/logger.ts';

export type TestApp = App & { url: string };

/** Settings to change, by group: `{ runner: { concurrency: 0 }, auth: { apiKeys: [...] } }`. */
export type ConfigOverrides = DeepPartial<Config>;

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** The real app, in this process, on a free port, against the given database. */
export async function startTestApp(databaseUrl: string, overrides: ConfigOverrides = {}): Promise<TestApp> {
  setLogLevel((process.env.LOG_LEVEL as Config['log']['level'] | undefined) ?? 'silent');
  const config = loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1' });
  const app = await startApp(withOverrides(withOverrides(config, { runner: { pollIntervalMs: 200 } }), overrides));
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
