import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

// The one place that runs `src/main.ts` as a child process: the tests (startServerProcess, runServerToExit) and the
// bench (bench/server-process.ts) all start the real server through spawnServer.

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type SpawnServerOptions = {
  /** Node flags before the script (the bench's profiling flags). */
  execArgv?: readonly string[];
  /** Where the server's stderr (its log) goes: a pipe this process reads (the default), or an open file descriptor. */
  stderr?: 'pipe' | number;
  /**
   * Run `npm start` as the leader of its own process group, as a shell runs a foreground command, so that
   * `signalServer` signals the whole group (npm, node and anything that stays in the group) the way Ctrl-C in a
   * terminal does.
   */
  asTerminal?: boolean;
  /** Another entry script than src/main.ts, relative to the repo (a test fixture that starts the app with its own kinds). */
  script?: string;
};

/** Starts `node src/main.ts` (the same entry as `npm start`) with exactly `env` and PATH: nothing else leaks in. */
export function spawnServer(env: Record<string, string>, options: SpawnServerOptions = {}): ChildProcess {
  const stdio: ['ignore', 'ignore', 'pipe' | number] = ['ignore', 'ignore', options.stderr ?? 'pipe'];
  const fullEnv = { PATH: process.env.PATH ?? '', ...env };
  if (options.asTerminal) {
    return spawn('npm', ['start', '--silent'], {
      cwd: repoRoot,
      env: { HOME: process.env.HOME ?? repoRoot, ...fullEnv },
      stdio,
      detached: true,
    });
  }
  const script = path.join(repoRoot, options.script ?? 'src/main.ts');
  return spawn(process.execPath, [...(options.execArgv ?? []), script], { cwd: repoRoot, env: fullEnv, stdio });
}

/** Sends `signal` to the server, or to its whole process group when it was spawned `asTerminal`. */
export function signalServer(child: ChildProcess, signal: NodeJS.Signals, asTerminal = false): void {
  if (!asTerminal || child.pid === undefined) return void child.kill(signal);
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Resolves with the exit code (or the signal's name) once the process has exited. */
export function exitOf(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode ?? 'unknown');
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
}

/** `signal`, then SIGKILL for a process that has not exited after `graceMs`; resolves with how it exited. */
export async function stopServer(
  child: ChildProcess,
  exited: Promise<number | string>,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
  asTerminal = false,
): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  signalServer(child, signal, asTerminal);
  const timeout = new AbortController();
  const inTime = await Promise.race([exited.then(() => true), sleep(graceMs, false, { signal: timeout.signal }).catch(() => false)]);
  timeout.abort();
  if (!inTime) signalServer(child, 'SIGKILL', asTerminal);
  return exited;
}

/** The server's URL (http://host:port/graphql) when `line` is its "listening" log line, else null. */
export function listeningUrl(line: string): string | null {
  if (!line.includes('"listening"')) return null;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === 'listening' && typeof entry.url === 'string' ? entry.url : null;
  } catch {
    return null; // a partly written line, or not a log line
  }
}

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

export type ServerProcessOptions = { startTimeoutMs?: number; asTerminal?: boolean; script?: string };

/** What a test server gets unless the test says otherwise: a free port, JSON logs to read, quick polling. */
const TEST_DEFAULTS = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', POLL_INTERVAL_MS: '200' };

/** Runs the real server as a child process with the given environment, and resolves once it logs that it is listening. */
export async function startServerProcess(env: Record<string, string>, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const { startTimeoutMs = 45_000, asTerminal = false, script } = options;
  const child = spawnServer({ ...TEST_DEFAULTS, ...env }, { asTerminal, script });
  const signal = (name: NodeJS.Signals) => signalServer(child, name, asTerminal);
  const logs: Array<Record<string, unknown>> = [];
  const exited = exitOf(child);
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
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          continue; // not a log line (a startup error is one plain line)
        }
        const listening = listeningUrl(line);
        if (listening) {
          clearTimeout(timer);
          resolve(listening.replace(/\/graphql$/, ''));
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

export type FinishedProcess = {
  /** The exit code, or the signal's name when it was killed. */
  exit: number | string;
  stderr: string;
  /** The stderr lines that are not JSON log lines (a startup failure is meant to be exactly one). */
  plainLines: string[];
};

/**
 * Runs the server with only the given environment (and PATH) until it exits, for startups that are meant to
 * fail. A process still running after `timeoutMs` is killed and the promise rejects. `onSpawn` gets the
 * child, to signal it.
 */
export function runServerToExit(
  env: Record<string, string>,
  // Generous: a config error exits in well under a second, but a loaded 2-core machine can take long to start Node.
  timeoutMs = 60_000,
  onSpawn?: (child: ChildProcess) => void,
  options: Pick<SpawnServerOptions, 'script'> = {},
): Promise<FinishedProcess> {
  const child = spawnServer(env, options);
  onSpawn?.(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server was still running after ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    // 'close', not 'exit': it comes after stderr has been read to the end.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const plainLines = stderr.split('\n').filter((line) => line !== '' && !isLogLine(line));
      resolve({ exit: code ?? signal ?? 'unknown', stderr, plainLines });
    });
  });
}

function isLogLine(line: string): boolean {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null && 'msg' in parsed;
  } catch {
    return false;
  }
}
