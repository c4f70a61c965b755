import { type App, startApp } from './app.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { demoKinds } from './kinds/demo.ts';
import { logger, setLogFormat, setLogLevel } from './logger.ts';

// Process entry only: configuration, start, signals. A startup failure is one line and exit code 1.
async function main(): Promise<void> {
  let config: Config;
  try {
    // `--worker-only` is the same as WORKER_ONLY=true: run jobs, open no HTTP port.
    config = loadConfig(process.argv.includes('--worker-only') ? { ...process.env, WORKER_ONLY: 'true' } : process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`jobql: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  setLogFormat(config.log.format);
  setLogLevel(config.log.level);

  // Signals are taken from the first moment. A SIGTERM during startup abandons the waits on the database at once
  // (a database that is down or hangs must not keep the process from stopping) and exits 0 after what was
  // started is stopped; the embedded PostgreSQL's own start is awaited, so that it is stopped rather than left
  // running.
  let app: App | null = null;
  const startup = new AbortController();
  let stopRequested: string | null = null;
  const stop = (running: App) =>
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { err: error });
        process.exit(1);
      },
    );
  const onSignal = (signal: string) => {
    if (stopRequested) return;
    stopRequested = signal;
    logger.info('received signal; shutting down gracefully', { signal });
    if (app) void stop(app);
    else startup.abort(new Error(`startup abandoned: received ${signal}`));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  try {
    app = await startApp(config, { kinds: demoKinds, signal: startup.signal });
  } catch (error) {
    if (stopRequested) {
      logger.info('startup abandoned; stopped', { signal: stopRequested });
      process.exit(0);
    }
    process.stderr.write(`jobql: could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  if (stopRequested) void stop(app);
}

void main();
