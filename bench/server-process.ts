import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exitOf, listeningUrl, spawnServer, stopServer } from '../test/helpers/server-process.ts';

export type ServerProcess = {
  name: string;
  pid: number;
  /** http://127.0.0.1:PORT/graphql */
  graphqlUrl: string;
  logFile: string;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`); resolves with the exit code or signal. */
  stop: (graceMs?: number) => Promise<number | string>;
};

const running = new Set<ServerProcess>();

/**
 * Runs the real server through the tests' spawnServer, so that the load generator in this process never shares
 * an event loop with it. Its log goes to a file rather than a pipe: reading a pipe would cost this process CPU on
 * a 2-core machine, and an unread pipe would block the child.
 */
export async function startServerProcess(options: {
  name: string;
  databaseUrl: string;
  workerConcurrency: number;
  logDir: string;
  execArgv?: readonly string[];
  startTimeoutMs?: number;
}): Promise<ServerProcess> {
  const logFile = path.join(options.logDir, `${options.name}.log`);
  const fd = openSync(logFile, 'w');
  const env = {
    DATABASE_URL: options.databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    WORKER_CONCURRENCY: String(options.workerConcurrency),
    LOG_LEVEL: 'info',
  };
  let child: ReturnType<typeof spawnServer>;
  try {
    child = spawnServer(env, { execArgv: options.execArgv, stderr: fd });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  const exited = exitOf(child);
  let exitedWith: number | string | null = null;
  void exited.then((code) => {
    exitedWith = code;
  });

  const stop = async (graceMs = 20_000): Promise<number | string> => {
    await stopServer(child, exited, 'SIGTERM', graceMs);
    running.delete(server);
    return exited;
  };

  const server: ServerProcess = { name: options.name, pid: child.pid ?? -1, graphqlUrl: '', logFile, stop };
  running.add(server);

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  while (Date.now() < deadline && exitedWith === null) {
    const url = findListeningUrl(logFile);
    if (url) {
      server.graphqlUrl = url;
      return server;
    }
    await sleep(25);
  }
  const why = exitedWith === null ? 'did not log "listening" in time' : `exited (${exitedWith}) before listening`;
  await stop(2000);
  throw new Error(`server ${options.name} ${why}; last lines of ${logFile}:\n${tail(logFile, 15)}`);
}

/** Stops every server process still running (for the end of the run and for failures). */
export async function stopAllServerProcesses(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop(5000)));
}

function findListeningUrl(logFile: string): string | null {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const url = listeningUrl(line);
    if (url) return url;
  }
  return null;
}

export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
