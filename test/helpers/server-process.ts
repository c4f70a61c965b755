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
  kill: (signal: NodeJS.Signals) => Promise<number | string>;
};

/**
 * Runs the real server (`node src/main.ts`, the same entry as `npm start`) as a child process with the
 * given environment, and resolves once it logs that it is listening.
 */
export async function startServerProcess(env: Record<string, string>, startTimeoutMs = 45_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [path.join(root, 'src/main.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', POLL_INTERVAL_MS: '200', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    // A server that neither listens nor exits is killed, so no test leaves one behind.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
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
    kill: (signal) => {
      child.kill(signal);
      return exited;
    },
  };
}
