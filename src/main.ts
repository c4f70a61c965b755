import { startApp } from './app.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { logger, setLogLevel } from './logger.ts';

// Process entry only: configuration, start, signals. A startup failure is one line and exit code 1.
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`jobql: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  setLogLevel(config.logLevel);
  const app = await startApp(config).catch((error: unknown) => {
    process.stderr.write(`jobql: could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.info('received signal; shutting down gracefully', { signal });
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { err: error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
