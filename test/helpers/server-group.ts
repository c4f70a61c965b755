import { type ServerProcess, type ServerProcessOptions, startServerProcess } from './server-process.ts';

export type ServerGroup = {
  /** startServerProcess, remembering the process so that stopAll can end it. */
  start: (env: Record<string, string>, options?: ServerProcessOptions) => Promise<ServerProcess>;
  /** Starts several processes at the same moment; rejects (once all have settled, all remembered) if any fails. */
  startAll: (...envs: Array<Record<string, string>>) => Promise<ServerProcess[]>;
  /**
   * Ends every process of the group that is still running: `signal` first (SIGKILL unless told otherwise),
   * then SIGKILL for any that has not exited after `graceMs`. For afterEach/afterAll, so a failing test
   * never leaves a server behind.
   */
  stopAll: (signal?: NodeJS.Signals, graceMs?: number) => Promise<void>;
};

export function createServerGroup(): ServerGroup {
  const servers = new Set<ServerProcess>();
  const start = async (env: Record<string, string>, options?: ServerProcessOptions) => {
    const server = await startServerProcess(env, options);
    servers.add(server);
    return server;
  };
  return {
    start,
    startAll: async (...envs) => {
      // allSettled, not all: a failure must not return before the others are started and remembered.
      const outcomes = await Promise.allSettled(envs.map((env) => start(env)));
      const failed = outcomes.find((outcome) => outcome.status === 'rejected');
      if (failed) throw failed.reason;
      return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<ServerProcess>).value);
    },
    stopAll: async (signal = 'SIGKILL', graceMs = 10_000) => {
      const running = [...servers].filter(({ child }) => child.exitCode === null && child.signalCode === null);
      servers.clear();
      await Promise.all(
        running.map(async (server) => {
          void server.kill(signal);
          const timer = setTimeout(() => void server.kill('SIGKILL'), graceMs);
          await server.exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}
