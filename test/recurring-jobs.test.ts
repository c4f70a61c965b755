import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, test } from '@jest/globals';
import { z } from 'zod';
import { type App, startApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { defineKind } from '../src/kinds/kind.ts';
import { setLogLevel } from '../src/logger.ts';
import { withOverrides } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { postGraphQL } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { runServerToExit, type ServerProcess, startServerProcess, stopServer } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// Recurring jobs through real servers: two processes on one database create each tick's job once; a bad
// expression stops startup naming the kind; a scheduled job is an ordinary job (cancellable, retried by its
// kind's policy).
const FIXTURE = 'test/fixtures/cron-server.ts';

describe('two server processes with a kind scheduled every second', () => {
  const db = useTestDatabase();
  const servers: ServerProcess[] = [];
  db.beforeDrop(async () => {
    await Promise.all(servers.map((server) => stopServer(server.child, server.exited)));
  });

  test('create one job per tick for ~5 s: no tick twice, none left out, each job completed once', async () => {
    const [{ at: before }] = (await db.query<{ at: string }>("SELECT to_json(now()) #>> '{}' AS at")) as [{ at: string }];
    const env = { DATABASE_URL: db.url, WORKER_CONCURRENCY: '2' };
    servers.push(...(await Promise.all([startServerProcess(env, { script: FIXTURE }), startServerProcess(env, { script: FIXTURE })])));
    // Both run from here: five seconds of ticks that both find due.
    await sleep(5000);
    await Promise.all(servers.map((server) => stopServer(server.child, server.exited)));
    const [{ at: after }] = (await db.query<{ at: string }>("SELECT to_json(now()) #>> '{}' AS at")) as [{ at: string }];
    const ticks = await db.query<{ tick: string; job_id: string }>(
      `SELECT to_json(tick_at) #>> '{}' AS tick, job_id FROM cron_ticks WHERE kind = 'tick' ORDER BY tick_at`,
    );
    const jobs = await db.query<{ id: string; run_at: string; status: string; attempt: number; result: unknown }>(
      `SELECT id, to_json(run_at) #>> '{}' AS run_at, status, attempt, result FROM jobs WHERE kind = 'tick' ORDER BY run_at`,
    );
    const seconds = ticks.map((tick) => new Date(tick.tick).getTime() / 1000);
    // No duplicates: one job per tick, each tick once, on whole consecutive seconds (no tick left out).
    expect(new Set(seconds).size).toBe(seconds.length);
    expect(seconds).toEqual(seconds.map((_, index) => (seconds[0] as number) + index));
    expect(jobs.map((job) => job.id).sort()).toEqual(ticks.map((tick) => tick.job_id).sort());
    expect(jobs.map((job) => new Date(job.run_at).getTime() / 1000)).toEqual(seconds);
    // At least the five seconds both ran; at most one per second the processes lived.
    expect(seconds.length).toBeGreaterThanOrEqual(5);
    expect(seconds.length).toBeLessThanOrEqual(Math.ceil((new Date(after).getTime() - new Date(before).getTime()) / 1000) + 1);
    expect((seconds[0] as number) * 1000).toBeGreaterThan(new Date(before).getTime());
    // Each job was run by its kind's handler exactly once (the last ones may still have been queued at the stop).
    for (const job of jobs) {
      if (job.status !== 'queued') expect(job).toMatchObject({ status: 'completed', attempt: 1, result: { from: 'fixture' } });
    }
    expect(jobs.filter((job) => job.status === 'completed').length).toBeGreaterThanOrEqual(jobs.length - 2);
    // What each process says it created adds up to the ticks: the losers of a tick created nothing.
    const createdBy = servers.map((server) =>
      server.logs.filter((line) => line.msg === 'scheduled jobs created').reduce((sum, line) => sum + (line.count as number), 0),
    );
    expect(createdBy.reduce((a, b) => a + b, 0)).toBe(ticks.length);
  });
});

describe('startup', () => {
  const db = useTestDatabase();
  test('an invalid cron expression stops startup with one line naming the kind and the expression', async () => {
    const finished = await runServerToExit(
      { DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1', FIXTURE_CRON: '*/5 * * *' },
      30_000,
      undefined,
      { script: FIXTURE },
    );
    expect(finished.exit).toBe(1);
    expect(finished.plainLines).toHaveLength(1);
    expect(finished.plainLines[0]).toMatch(/^jobql: could not start: kind tick: schedule\[0\]: invalid cron expression "\*\/5 \* \* \*": /);
  });
});

describe('a scheduled job is an ordinary job', () => {
  const db = useTestDatabase();
  const apps: App[] = [];
  afterAll(async () => {
    for (const app of apps) await app.stop();
  });
  db.beforeDrop(async () => {
    for (const app of apps) await app.stop();
  });

  const failing = defineKind({
    name: 'failing-tick',
    input: z.object({}),
    maxAttempts: 2,
    retryBackoffMs: 0,
    handler: async () => {
      throw new Error('the report service is down');
    },
    schedule: [{ cron: '* * * * * *' }],
  });
  const waiting = defineKind({
    name: 'waiting-tick',
    input: z.object({}),
    concurrency: 1,
    handler: (_input, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    schedule: [{ cron: '* * * * * *' }],
  });

  async function start(concurrency: number): Promise<string> {
    setLogLevel((process.env.LOG_LEVEL as 'info' | undefined) ?? 'silent');
    const config = withOverrides(loadConfig({ DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1' }), {
      runner: { pollIntervalMs: 200, concurrency, shutdownGraceMs: 500 },
    });
    const app = await startApp(config, { kinds: [failing, waiting] });
    apps.push(app);
    return app.url as string;
  }

  type Listed = { jobs: { edges: { node: { id: string; status: string } }[] } };
  const jobsOf = async (url: string, kind: string, status: string) => {
    const response = await postGraphQL<Listed>(url, {
      query:
        'query($kind: String, $status: [JobStatus!]) { jobs(kind: $kind, status: $status, first: 100) { edges { node { id status } } } }',
      variables: { kind, status: [status] },
    });
    return response.data?.jobs.edges.map((edge) => edge.node.id) ?? [];
  };
  const first = (url: string, kind: string, status: string) =>
    waitFor(`a ${status} job of ${kind}`, async () => (await jobsOf(url, kind, status))[0], 20_000);

  test("retried by its kind's policy (maxAttempts 2), then FAILED with the handler's error", async () => {
    const url = await start(4);
    const id = await first(url, 'failing-tick', 'FAILED');
    const job = await waitForJob(url, id, 'FAILED');
    expect(job).toMatchObject({ attempt: 2, maxAttempts: 2, error: { code: 'JOB_FAILED', message: 'the report service is down' } });
    await apps.pop()?.stop();
  });

  test('cancellable: a queued one is CANCELLED at once, a running one stops and ends CANCELLED', async () => {
    // One slot: once a waiting-tick job holds it (until aborted), the next ticks' jobs stay queued behind it.
    const url = await start(1);
    const running = await first(url, 'waiting-tick', 'RUNNING');
    const queued = await first(url, 'waiting-tick', 'QUEUED');
    expect(queued).not.toBe(running);
    for (const id of [queued, running]) {
      const response = await postGraphQL<{ cancelJob: { status: string } }>(url, {
        query: 'mutation($id: ID!) { cancelJob(id: $id) { status } }',
        variables: { id },
      });
      expect(response.errors).toBeUndefined();
    }
    expect(await waitForJob(url, queued, 'CANCELLED')).toMatchObject({ status: 'CANCELLED', attempt: 0 });
    expect(await waitForJob(url, running, 'CANCELLED')).toMatchObject({ status: 'CANCELLED', attempt: 1 });
  });
});
