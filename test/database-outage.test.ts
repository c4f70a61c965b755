import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { JobUpdatedDocument } from './generated/graphql.ts';
import { insertJob, useTestDatabase } from './helpers/database.ts';
import { type DatabaseProxy, startDatabaseProxy } from './helpers/db-proxy.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { runServerToExit, type ServerProcess, startServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// What a process says and does while its database is away: down (connections refused and cut) or hung (the
// link stops answering without closing). A proxy between the server process and PostgreSQL plays the outage;
// the test reaches the database directly. Timeouts are short here; margins in assertions are generous.
const TIMEOUTS = { DATABASE_STATEMENT_TIMEOUT_MS: '2000', DATABASE_CONNECT_TIMEOUT_MS: '1000' };
const ANSWER_WITHIN_MS = 10_000;

const db = useTestDatabase();

type Answer = { status: number; retryAfter: string | null; code: string | undefined; ms: number };

async function createJob(url: string): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'mutation { createJob(input: {kind: "echo"}) { id } }' }),
    // Past this the request is hanging: the test fails rather than waiting with it.
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS + 5000),
  });
  const body = (await response.json()) as { errors?: Array<{ extensions?: { code?: string } }> };
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    code: body.errors?.[0]?.extensions?.code,
    ms: Date.now() - started,
  };
}

async function readyz(url: string): Promise<{ status: number; reason?: string }> {
  const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
  const body = (await response.json()) as { reason?: string };
  return { status: response.status, reason: body.reason };
}

describe('a running process', () => {
  let proxy: DatabaseProxy;
  let server: ServerProcess;

  beforeAll(async () => {
    proxy = await startDatabaseProxy(db.url);
    server = await startServerProcess({ DATABASE_URL: proxy.url, WORKER_CONCURRENCY: '2', POLL_INTERVAL_MS: '200', ...TIMEOUTS });
  });

  afterAll(async () => {
    await proxy?.resume();
    await server?.kill('SIGKILL');
    await proxy?.close();
  });

  test('while the database is down: SERVICE_UNAVAILABLE (503, Retry-After) logged as a warning, /readyz not ready with reasons; claims resume soon after it returns', async () => {
    await proxy.cut();
    const outageStarted = Date.now();
    const answer = await createJob(server.url);
    expect(answer).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE', retryAfter: expect.stringMatching(/^\d+$/) });
    expect(answer.ms).toBeLessThan(ANSWER_WITHIN_MS);
    const rest = await fetch(`${server.url}/jobs/00000000-0000-4000-8000-000000000000`);
    expect(rest.status).toBe(503);
    expect(rest.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('SERVICE_UNAVAILABLE');
    const client = wsClient(server.url);
    try {
      const stream = collect(client, JobUpdatedDocument, { id: '00000000-0000-4000-8000-000000000000' });
      const end = await stream.done;
      const errors =
        'error' in end ? (end.error as Array<{ extensions?: { code?: string } }>) : stream.results.flatMap((r) => r.errors ?? []);
      expect(errors[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await client.dispose();
    }
    // An outage is not a bug: warnings, no "unexpected error" lines.
    expect(server.logs.filter((line) => line.msg === 'unexpected error in a GraphQL operation')).toEqual([]);
    expect(server.logs.some((line) => line.msg === 'database unavailable; answered SERVICE_UNAVAILABLE' && line.level === 'warn')).toBe(
      true,
    );

    const notReady = await waitFor('/readyz to name the runner', async () => {
      const answer = await readyz(server.url);
      return answer.status === 503 && answer.reason?.includes('runner') ? answer : undefined;
    });
    expect(notReady.reason).toContain('the database does not answer');

    // A job queued while the process cannot see the database; the outage lasts long enough for reconnect backoffs
    // to grow (before the fix they reached 16 s and more).
    const queued = await insertJob(db);
    await sleep(Math.max(0, 17_000 - (Date.now() - outageStarted)));
    await proxy.resume();
    const resumed = Date.now();
    await waitFor(
      'the queued job to be picked up',
      async () => {
        const [row] = await db.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [queued]);
        return row?.status === 'completed' ? true : undefined;
      },
      30_000,
    );
    // Within a second or two when the machine is quiet; the margin is for a loaded one.
    expect(Date.now() - resumed).toBeLessThan(6000);
    await waitFor('/readyz to be ready again', async () => ((await readyz(server.url)).status === 200 ? true : undefined));
  }, 90_000);

  test('while the database hangs, a request answers SERVICE_UNAVAILABLE within the timeout rather than hanging', async () => {
    proxy.pause();
    try {
      const answer = await createJob(server.url);
      expect(answer).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
      expect(answer.ms).toBeLessThan(ANSWER_WITHIN_MS);
      const notReady = await readyz(server.url);
      expect(notReady.status).toBe(503);
    } finally {
      await proxy.resume();
    }
    await waitFor(
      'createJob to work again',
      async () => {
        const answer = await createJob(server.url);
        return answer.status === 200 && answer.code === undefined ? true : undefined;
      },
      30_000,
    );
  }, 90_000);

  test('SIGTERM while the database hangs: the process still stops, promptly', async () => {
    proxy.pause();
    const signalled = Date.now();
    const exit = await server.kill('SIGTERM');
    // The stop's own bounds: the statement timeout (2 s) for recording interrupted jobs, a second per connection end.
    expect(Date.now() - signalled).toBeLessThan(15_000);
    expect(exit).toBe(0);
  }, 40_000);
});

describe('a process starting against a hung database', () => {
  let proxy: DatabaseProxy;

  beforeAll(async () => {
    proxy = await startDatabaseProxy(db.url);
    proxy.pause();
  });

  afterAll(async () => {
    await proxy?.close();
  });

  test('gives up after DATABASE_STARTUP_TIMEOUT_MS with one line and exit code 1', async () => {
    const started = Date.now();
    const finished = await runServerToExit({ DATABASE_URL: proxy.url, DATABASE_STARTUP_TIMEOUT_MS: '3000', ...TIMEOUTS }, 30_000);
    expect(finished.exit).toBe(1);
    expect(finished.plainLines).toHaveLength(1);
    expect(finished.plainLines[0]).toMatch(/^jobql: could not start: the database did not answer within 3000 ms/);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 40_000);

  test('exits promptly on SIGTERM while it waits', async () => {
    let signalled = 0;
    const finished = await runServerToExit(
      { DATABASE_URL: proxy.url, DATABASE_STARTUP_TIMEOUT_MS: '60000', ...TIMEOUTS },
      30_000,
      (child) => {
        // Once it is waiting for the database (its first log line is the database it uses).
        child.stderr?.once('data', () => {
          setTimeout(() => {
            signalled = Date.now();
            child.kill('SIGTERM');
          }, 1500);
        });
      },
    );
    expect(signalled).toBeGreaterThan(0);
    expect(Date.now() - signalled).toBeLessThan(5000);
    expect(finished.exit).toBe(0);
  }, 40_000);
});
