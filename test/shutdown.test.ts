import { connect } from 'node:net';
import { afterEach, expect, test } from '@jest/globals';
import { CreateJobDocument } from './generated/graphql.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { waitFor } from './helpers/wait.ts';

// A graceful stop (SIGTERM or SIGINT) closes the port, gives running jobs SHUTDOWN_GRACE_MS to finish,
// fails the rest as INTERRUPTED, and exits 0: no job outlives the process as running.
const db = useTestDatabase();
const servers = createServerGroup();

afterEach(async () => {
  await servers.stopAll();
});

async function createJob(baseUrl: string, kind: string, input: unknown): Promise<string> {
  return (await data(baseUrl, CreateJobDocument, { input: { kind, input } })).createJob.id;
}

async function rowOf(id: string): Promise<Record<string, unknown> | undefined> {
  const [row] = await db.query('SELECT status, result, error_code FROM jobs WHERE id = $1', [id]);
  return row;
}

async function runningRows(): Promise<unknown[]> {
  return db.query('SELECT id FROM jobs WHERE status = $1', ['running']);
}

/** Resolves true when a new TCP connection to the server's port is accepted, false when it is refused. */
function acceptsConnections(baseUrl: string): Promise<boolean> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('after SIGTERM no job is running: a job that finishes within SHUTDOWN_GRACE_MS completes, one that does not is FAILED/INTERRUPTED, and the process exits 0', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '2', SHUTDOWN_GRACE_MS: '2000' });
  const short = await createJob(server.url, 'sleep', { ms: 500 });
  const long = await createJob(server.url, 'sleep', { ms: 60_000 });
  await Promise.all([waitForJob(server.url, short, 'RUNNING'), waitForJob(server.url, long, 'RUNNING')]);

  expect(await server.kill('SIGTERM')).toBe(0);
  expect(await rowOf(short)).toEqual({ status: 'completed', result: { sleptMs: 500 }, error_code: null });
  expect(await rowOf(long)).toEqual({ status: 'failed', result: null, error_code: 'INTERRUPTED' });
  // The same stored code as a lost session or a crash; the message says it was this stop.
  const [{ error } = {}] = await db.query<{ error: string }>('SELECT error FROM jobs WHERE id = $1', [long]);
  expect(error).toMatch(/interrupted: the process running it was stopped, and the job did not finish within the grace period/);
  expect(await runningRows()).toEqual([]);
});

test('after SIGTERM the server refuses new connections while a running job finishes, and after it has exited', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, SHUTDOWN_GRACE_MS: '60000' });
  const job = await createJob(server.url, 'sleep', { ms: 1000 });
  await waitForJob(server.url, job, 'RUNNING');
  expect(await acceptsConnections(server.url)).toBe(true);

  server.child.kill('SIGTERM');
  await waitFor('the port to refuse connections', async () => ((await acceptsConnections(server.url)) ? undefined : true));
  // Still draining: the port is closed while the job runs on.
  expect(server.child.exitCode).toBeNull();
  expect((await rowOf(job))?.status).toBe('running');

  expect(await server.exited).toBe(0);
  expect(await rowOf(job)).toEqual({ status: 'completed', result: { sleptMs: 1000 }, error_code: null });
  await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
});

test('SIGINT stops the server like SIGTERM: running jobs are FAILED/INTERRUPTED and the process exits 0', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, SHUTDOWN_GRACE_MS: '0' });
  const job = await createJob(server.url, 'sleep', { ms: 60_000 });
  await waitForJob(server.url, job, 'RUNNING');

  expect(await server.kill('SIGINT')).toBe(0);
  expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'received signal; shutting down gracefully', signal: 'SIGINT' }));
  expect(await rowOf(job)).toEqual({ status: 'failed', result: null, error_code: 'INTERRUPTED' });
  expect(await runningRows()).toEqual([]);
});
