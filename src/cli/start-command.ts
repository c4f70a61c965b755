import { type App, startApp } from '../app.ts';
import { type Config, ConfigError, loadConfig } from '../config.ts';
import { demoKinds as builtInDemoKinds } from '../kinds/demo.ts';
import type { JobKind } from '../kinds/kind.ts';
import { KindsFolderError, loadKindsFolder } from '../kinds/load-kinds-folder.ts';
import { logger, setLogFormat, setLogLevel } from '../logger.ts';

export type StartArgs = { kindsDir: string | null; workerOnly: boolean; demoKinds: boolean };

/** One line on stderr and exit code 1: how every startup failure ends. */
function failStart(message: string): never {
  process.stderr.write(`jobql: ${message}\n`);
  process.exit(1);
}

/** The kinds of `--demo-kinds` and `--kinds DIR`; a folder that cannot be used is a startup failure naming the file. */
async function kindsFor(args: StartArgs): Promise<JobKind[]> {
  const kinds: JobKind[] = args.demoKinds ? [...builtInDemoKinds] : [];
  if (args.kindsDir !== null) {
    try {
      kinds.push(...(await loadKindsFolder(args.kindsDir)));
    } catch (error) {
      if (error instanceof KindsFolderError) failStart(`could not load kinds: ${error.message}`);
      throw error;
    }
  }
  if (kinds.length === 0) failStart('no kinds to run: pass --kinds DIR (a folder of modules that export defineKind values)');
  return kinds;
}

/**
 * `jobql start` (and `npm start`, which adds --demo-kinds): configuration, kinds, start, signals. A startup
 * failure is one line and exit code 1.
 */
export async function startCommand(args: StartArgs): Promise<void> {
  let config: Config;
  try {
    // `--worker-only` is the same as WORKER_ONLY=true: run jobs, open no HTTP port.
    config = loadConfig(process.env, args.workerOnly ? { workerOnly: true } : {});
  } catch (error) {
    if (error instanceof ConfigError) failStart(error.message);
    throw error;
  }
  setLogFormat(config.log.format);
  setLogLevel(config.log.level);
  // Before the signal handlers: until they are set, a signal ends the process at once, and nothing has started.
  const kinds = await kindsFor(args);

  // Signals are taken from the first moment anything starts. A SIGTERM during startup abandons the waits on the
  // database at once (a database that is down or hangs must not keep the process from stopping) and exits 0
  // after what was started is stopped; the embedded PostgreSQL's own start is awaited, so that it is stopped
  // rather than left running.
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
    app = await startApp(config, { kinds, signal: startup.signal });
  } catch (error) {
    if (stopRequested) {
      logger.info('startup abandoned; stopped', { signal: stopRequested });
      process.exit(0);
    }
    failStart(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (stopRequested) void stop(app);
}
