import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { logger } from '../logger.ts';

/**
 * Which jobql process owns an embedded PostgreSQL data folder.
 *
 * PostgreSQL's own postmaster.pid cannot tell "a live jobql runs on this folder" from "a jobql was SIGKILLed
 * and its postmaster lives on": in both cases the postmaster is alive. Only the second may be stopped. So a
 * jobql that starts the embedded database first claims `<dir>.jobql.pid`, beside the data folder (initdb wants
 * the folder itself empty), holding its own pid and that process's start time. The file appears atomically
 * (link(2) of a complete file, failing when it exists), so two starts at the same moment cannot both win.
 * - A claim whose process is alive means the folder is in use: refuse, and touch nothing of it.
 * - A claim whose process is gone (SIGKILL, OOM, power loss) is stale: take it over; only then may a postmaster
 *   left behind be stopped. The start time makes a recycled pid (a container restarted with the same pids) count
 *   as gone.
 * Left open: two starts that both find the same stale claim can both remove it; the later one's postmaster then
 * fails on PostgreSQL's own postmaster.pid lock, so the outcome is a failed start, never a stolen database.
 */
export class DataDirInUseError extends Error {}

export type DataDirClaim = { release: () => Promise<void> };

export async function claimDataDir(databaseDir: string): Promise<DataDirClaim> {
  const file = `${databaseDir}.jobql.pid`;
  const mine = `${process.pid}\n${processStartTime(process.pid)}\n`;
  await mkdir(path.dirname(file), { recursive: true });
  const draft = `${file}.${process.pid}.tmp`;
  await writeFile(draft, mine);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await linkIfAbsent(draft, file)) return { release: () => releaseClaim(file, mine) };
      const owner = await readFile(file, 'utf8').catch(() => null);
      if (owner === null) continue; // released meanwhile
      const [pidLine = '', started = ''] = owner.split('\n');
      const pid = Number(pidLine);
      if (isSameProcessAlive(pid, started)) {
        throw new DataDirInUseError(
          `EMBEDDED_POSTGRES_DIR ${databaseDir} is in use by a running jobql (pid ${pid}); stop that server, ` +
            'or give this one its own EMBEDDED_POSTGRES_DIR, EMBEDDED_POSTGRES_PORT and PORT',
        );
      }
      logger.info('taking over the embedded PostgreSQL folder from a jobql that is gone', { ownerPid: pidLine });
      await rm(file, { force: true });
    }
    throw new Error(`could not claim ${file}: other processes keep claiming it`);
  } finally {
    await rm(draft, { force: true });
  }
}

async function linkIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Removes the claim only while it is still ours. */
async function releaseClaim(file: string, mine: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current === mine) await rm(file, { force: true });
}

function isSameProcessAlive(pid: number, started: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  // Where the start time is unknown (no /proc), a live pid has to be taken as the owner.
  return started === '' || processStartTime(pid) === started;
}

/** True while a process with this pid exists (EPERM: it exists but belongs to another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or '' without /proc. */
function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}
