import { type App, startApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { setLogLevel } from '../../src/logger.ts';

export type TestApp = App & { url: string };

/** The real app, in this process, on a free port, against the given database. */
export async function startTestApp(databaseUrl: string, overrides: Partial<Config> = {}): Promise<TestApp> {
  setLogLevel((process.env.LOG_LEVEL as Config['logLevel'] | undefined) ?? 'silent');
  const config = loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1' });
  const app = await startApp({ ...config, pollIntervalMs: 200, ...overrides });
  if (app.url === null) throw new Error('startTestApp serves HTTP; use startApp for worker-only');
  return app as TestApp;
}
