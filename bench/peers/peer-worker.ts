// A peer queue's worker, run as its own process by bench/peers/run.ts so that it never shares an event loop (or a
// CPU sample) with the load generator, as jobql's server does not. argv: system (graphile-default,
// graphile-batched, pg-boss), connection string, concurrency. It runs a no-op handler for the queue `noop`, sends
// the parent `{ type: 'ready' }` once its workers run and `{ type: 'first', at }` (epoch ms) when the first job
// starts, and stops gracefully on SIGTERM.
import { performance } from 'node:perf_hooks';
import { Logger, type Runner, run } from 'graphile-worker';
import { PgBoss } from 'pg-boss';

type Message = { type: 'ready' } | { type: 'first'; at: number } | { type: 'error'; message: string };

const [system, connectionString, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
if (!system || !connectionString || !Number.isInteger(concurrency)) {
  process.stderr.write('usage: peer-worker.ts <graphile-default|graphile-batched|pg-boss> <connection string> <concurrency>\n');
  process.exit(2);
}

const send = (message: Message) => process.send?.(message);
let first = true;
/** The no-op handler's only work: tell the parent when the first job started, on a clock it shares. */
const started = () => {
  if (!first) return;
  first = false;
  send({ type: 'first', at: performance.timeOrigin + performance.now() });
};

/** Each peer's worker with the options the issue compares: defaults, graphile's batched mode, pg-boss's burst. */
async function startWorker(): Promise<() => Promise<void>> {
  if (system === 'pg-boss') {
    const boss = new PgBoss({ connectionString, max: concurrency + 2, useListenNotify: true, schedule: false, supervise: false });
    boss.on('error', (error: Error) => process.stderr.write(`pg-boss error: ${error.message}\n`));
    await boss.start();
    // 16 workers fetching 16 jobs each, fetching again at once while batches come back full (pg-boss's burst mode);
    // the queue has `notify: true`, so an idle worker is woken by the NOTIFY of a send.
    await boss.work(
      'noop',
      { localConcurrency: concurrency, batchSize: 16, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
      async () => {
        started();
      },
    );
    return () => boss.stop({ graceful: true, timeout: 10_000 });
  }
  const batched = system === 'graphile-batched';
  const silent = () => () => {};
  const runner: Runner = await run({
    connectionString,
    concurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    logger: new Logger(silent),
    taskList: {
      noop: async () => {
        started();
      },
    },
    // Batched mode as graphile-worker documents it for throughput: a local queue fetched (and locked) in batches,
    // and completions of the same tick written by one statement.
    preset: batched ? { worker: { localQueue: { size: 16 * concurrency }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } : {},
  });
  return () => runner.stop();
}

try {
  const stop = await startWorker();
  process.once('SIGTERM', () => {
    void stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`stop failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  });
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
