import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type ServerProcess = {
  child: ChildProcess;
  url: string;
  /** Every log line the process wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Everything the process wrote to stderr so far, as written. */
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` (to the whole process group when started `asTerminal`) and resolves once it exited. */
  kill: (signal: NodeJS.Signals) => Promise<number | string>;
};

export type ServerProcessOptions = {
  startTimeoutMs?: number;
  /**
   * Run `npm start` as the leader of its own process group, as a shell runs a foreground command, so that
   * `kill` signals the whole group (npm, node and anything that stays in the group) the way Ctrl-C in a
   * terminal does.
   */
  asTerminal?: boolean;
};

/**
 * Runs the real server (`node src/main.ts`, the same entry as `npm start`) as a child process with the
 * given environment, and resolves once it logs that it is listening.
 */
export async function startServerProcess(env: Record<string, string>, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const { startTimeoutMs = 45_000, asTerminal = false } = options;
  const fullEnv = { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', POLL_INTERVAL_MS: '200', ...env };
  const child = asTerminal
    ? spawn('npm', ['start', '--silent'], {
        cwd: root,
        env: { HOME: process.env.HOME ?? root, ...fullEnv },
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: true,
      })
    : spawn(process.execPath, [path.join(root, 'src/main.ts')], { cwd: root, env: fullEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const signal = (name: NodeJS.Signals) => {
    if (!asTerminal || child.pid === undefined) return void child.kill(name);
    try {
      process.kill(-child.pid, name);
    } catch {
      // the group is gone already
    }
  };
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    // A server that neither listens nor exits is killed, so no test leaves one behind.
    const timer = setTimeout(() => {
      signal('SIGKILL');
      reject(new Error(`server did not listen within ${startTimeoutMs} ms:\n${stderr}`));
    }, startTimeoutMs);
    let buffered = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'listening') {
            clearTimeout(timer);
            resolve(String(entry.url).replace(/\/graphql$/, ''));
          }
        } catch {
          // not a log line (a startup error is one plain line)
        }
      }
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)));
    void exited.finally(() => clearTimeout(timer));
  });
  return {
    child,
    url,
    logs,
    stderr: () => stderr,
    exited,
    kill: (name) => {
      signal(name);
      return exited;
    },
  };
}
