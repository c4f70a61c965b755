import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { z } from 'zod';
import { defineKind, type Jobql, JobqlError, startJobql, startWorker } from '../src/index.ts';
import { useTestDatabase } from './helpers/database.ts';
import { waitFor } from './helpers/wait.ts';

// The library as a user's program calls it (what `import … from 'jobql'` gets), in this process: its own kinds,
// options over the environment, createJob with the API's checks, and a worker-only process.

const double = defineKind({
  name: 'double',
  input: z.strictObject({ n: z.number().int() }),
  maxAttempts: 3,
  handler: async ({ n }, ctx) => {
    ctx.progress(1);
    return { doubled: n * 2 };
  },
});

const KEY = 'acme:acme-key-0123456789abcdef';
const db = useTestDatabase();

/** startJobql for one describe block, stopped after its tests (and before the database is dropped). */
function useApps() {
  const apps: Jobql[] = [];
  const stopAll = async () => {
    for (const app of apps.splice(0).reverse()) await app.stop();
  };
  afterAll(stopAll);
  db.beforeDrop(stopAll);
  return async (...args: Parameters<typeof startJobql>): Promise<Jobql> => {
    const app = await startJobql(...args);
    apps.push(app);
    return app;
  };
}

async function finished(app: Jobql, id: string, tenant?: string) {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const job = await app.getJob(id, { tenant });
      return job && ['completed', 'failed', 'cancelled'].includes(job.status) ? job : undefined;
    },
    30_000,
  );
}

describe('an API process with its own kinds (options win over the environment)', () => {
  const start = useApps();
  let api: Jobql;
  beforeAll(async () => {
    api = await start({
      kinds: [double],
      databaseUrl: db.url,
      // Neither would start: PORT is not a number, and with WORKER_CONCURRENCY 4 this process would run the jobs
      // the worker below is meant to run. The options win, so neither is read.
      env: { PORT: 'not-a-port', WORKER_CONCURRENCY: '4', API_KEYS: KEY, LOG_LEVEL: 'silent' },
      port: 0,
      host: '127.0.0.1',
      workerConcurrency: 0,
    });
    await start({ kinds: [double], databaseUrl: db.url, env: { LOG_LEVEL: 'silent' }, http: false, pollIntervalMs: 200 });
  });

  test('the environment is the fallback for what the options leave out (API_KEYS: a request without a key is refused)', async () => {
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ kinds { name } }' }),
    });
    expect(response.status).toBe(401);
  });

  test("createJob runs through the API's checks and a worker-only process (http: false) runs the job", async () => {
    const job = await api.createJob('double', { n: 21 }, { tenant: 'acme' });
    expect(job).toMatchObject({ kind: 'double', status: 'queued', tenant: 'acme' });
    expect(await finished(api, job.id, 'acme')).toMatchObject({ status: 'completed', result: { doubled: 42 }, progress: 1 });
    // The same job through the API, as its tenant sees it.
    const response = await fetch(`${api.url}/jobs/${job.id}`, { headers: { authorization: `Bearer ${KEY.split(':')[1]}` } });
    expect(await response.json()).toMatchObject({ id: job.id, status: 'COMPLETED', result: { doubled: 42 } });
  });

  test("the kind's maxAttempts is the default; the job's own value wins", async () => {
    expect((await api.createJob('double', { n: 1 })).maxAttempts).toBe(3);
    expect((await api.createJob('double', { n: 1 }, { maxAttempts: 1 })).maxAttempts).toBe(1);
  });

  test('bad requests are domain errors with codes: an unknown kind (the demo kinds are not there unless asked for), input the schema refuses', async () => {
    const unknown = await api.createJob('echo', {}).catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(JobqlError);
    expect(unknown).toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringContaining('unknown job kind "echo"; known kinds: double'),
    });
    await expect(api.createJob('double', { n: 'x' })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/at n:/),
    });
    await expect(api.createJob('double', { n: 1 }, { priority: 5000 })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});

describe('startup', () => {
  const start = useApps();

  test('a worker-only process (startWorker) has no URL; demoKinds: true adds the built-in kinds', async () => {
    const viaStartWorker = await startWorker({ kinds: [double], databaseUrl: db.url, env: { LOG_LEVEL: 'silent' } });
    expect(viaStartWorker.url).toBeNull();
    await viaStartWorker.stop();
    const worker = await start({ kinds: [double], demoKinds: true, databaseUrl: db.url, port: 0, env: { LOG_LEVEL: 'silent' } });
    const echo = await worker.createJob('echo', { hello: 'world' });
    expect(await finished(worker, echo.id)).toMatchObject({ status: 'completed', result: { hello: 'world' } });
  });

  test('a bad option is a ConfigError naming the option; two kinds with one name name both definitions', async () => {
    await expect(startJobql({ kinds: [double], databaseUrl: db.url, workerConcurrency: -1, env: {} })).rejects.toThrow(
      /^invalid configuration: option workerConcurrency /,
    );
    const again = defineKind({ name: 'double', input: z.object({}), handler: async () => null });
    await expect(startJobql({ kinds: [double, again], databaseUrl: db.url, env: { LOG_LEVEL: 'silent' } })).rejects.toThrow(
      /two kinds are named "double": .*library-api\.test\.ts:\d+.* and .*library-api\.test\.ts:\d+/,
    );
  });
});
