/**
 * Runs a bench to its end whatever happens: `cleanUp` (drop the bench's databases, stop its processes and the
 * embedded PostgreSQL) runs once after success, after a failure, on SIGINT/SIGTERM and when the run outlives
 * `timeoutMs`, so that no run leaves servers or databases behind. A failure sets exit code 1.
 */
export async function runBench(options: {
  name: string;
  timeoutMs: number;
  main: () => Promise<void>;
  cleanUp: (succeeded: boolean) => Promise<void>;
  log: (line: string) => void;
}): Promise<void> {
  const { name, timeoutMs, main, cleanUp, log } = options;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\nreceived ${signal}; cleaning up`);
      void cleanUp(false).finally(() => process.exit(130));
    });
  }
  const watchdog = setTimeout(() => {
    log(`\nthe run took longer than ${timeoutMs / 1000} s; giving up`);
    void cleanUp(false).finally(() => process.exit(1));
  }, timeoutMs);
  watchdog.unref();
  try {
    await main();
    await cleanUp(true);
  } catch (error) {
    log(`\n${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanUp(false);
    process.exitCode = 1;
  }
}
