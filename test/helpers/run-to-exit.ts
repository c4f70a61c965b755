import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type FinishedProcess = {
  /** The exit code, or the signal's name when it was killed. */
  exit: number | string;
  stderr: string;
  /** The stderr lines that are not JSON log lines (a startup failure is meant to be exactly one). */
  plainLines: string[];
};

/**
 * Runs `node src/main.ts` with only the given environment (and PATH) until it exits, for startups that are
 * meant to fail. A process still running after `timeoutMs` is killed and the promise rejects. `onSpawn` gets the
 * child, to signal it.
 */
export function runServerToExit(
  env: Record<string, string>,
  timeoutMs = 20_000,
  onSpawn?: (child: ChildProcess) => void,
): Promise<FinishedProcess> {
  const child = spawn(process.execPath, [path.join(root, 'src/main.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  onSpawn?.(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
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
