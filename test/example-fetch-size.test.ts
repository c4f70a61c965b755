import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { useTestDatabase } from './helpers/database.ts';
import { buildPackage, runCommand } from './helpers/package-build.ts';
import { repoRoot, type ServerProcess, startServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// examples/fetch-size as its README runs it (`npm install`, `npm start`), against a local HTTP server: a fetch
// completes with the size and its progress, and a cancel reaches the download through ctx.signal.

const example = path.join(repoRoot, 'examples/fetch-size');
const BODY = Buffer.alloc(300_000, 'x');
const db = useTestDatabase();
let site: Server;
let siteUrl: string;
let server: ServerProcess;
/** Requests to /slow whose connection closed before the server finished answering them. */
let abortedDownloads = 0;

beforeAll(async () => {
  site = createServer((request, response) => {
    if (request.url === '/slow') {
      // Sends a first chunk and then nothing: only an abort ends this download.
      response.writeHead(200, { 'content-length': String(BODY.length), 'content-type': 'text/plain' });
      response.write(BODY.subarray(0, 1000));
      response.once('close', () => {
        if (!response.writableFinished) abortedDownloads++;
      });
      return;
    }
    response.writeHead(200, { 'content-length': String(BODY.length), 'content-type': 'text/plain' });
    response.end(BODY);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  await buildPackage();
  await runCommand('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: example,
    timeoutMs: 240_000,
  });
  server = await startServerProcess(
    { DATABASE_URL: db.url, LOG_FORMAT: 'json' },
    { command: { file: 'npm', args: ['start', '--silent'], cwd: example }, asTerminal: true },
  );
}, 400_000);

afterAll(async () => {
  await server?.kill('SIGTERM');
  site?.closeAllConnections();
  await new Promise((resolve) => site?.close(resolve));
});
db.beforeDrop(async () => {
  await server?.kill('SIGTERM');
});

async function gql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data: T; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const createJob = (url: string) =>
  gql<{ createJob: { id: string } }>('mutation ($url: JSON!) { createJob(input: { kind: "fetch-size", input: { url: $url } }) { id } }', {
    url,
  });

const jobOf = async (id: string) => (await (await fetch(`${server.url}/jobs/${id}`)).json()) as Record<string, unknown>;

test('a fetch-size job completes with the size of what it fetched, its progress at 1', async () => {
  const { createJob: created } = await createJob(`${siteUrl}/file`);
  const job = await waitFor('the job to complete', async () => {
    const current = await jobOf(created.id);
    return current.status === 'COMPLETED' || current.status === 'FAILED' ? current : undefined;
  });
  expect(job).toMatchObject({
    status: 'COMPLETED',
    progress: 1,
    result: { url: `${siteUrl}/file`, bytes: BODY.length, contentType: 'text/plain' },
    maxAttempts: 3,
  });
});

test('cancelling a running download ends the request itself (the handler passes ctx.signal to fetch)', async () => {
  const { createJob: created } = await createJob(`${siteUrl}/slow`);
  await waitFor('the job to run', async () => ((await jobOf(created.id)).status === 'RUNNING' ? true : undefined));
  await gql('mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id: created.id });
  await waitFor('the download to be aborted', async () => (abortedDownloads > 0 ? true : undefined));
  expect(await waitFor('the job to end', async () => ((await jobOf(created.id)).status === 'CANCELLED' ? true : undefined))).toBe(true);
});

test("a URL that is not http(s) is refused at createJob by the kind's schema", async () => {
  await expect(createJob('file:///etc/passwd')).rejects.toThrow(/BAD_USER_INPUT/);
});
