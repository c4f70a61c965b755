import { afterAll, beforeAll, expect, test } from '@jest/globals';

import { CreateJobDocument, GetJobDocument } from './generated/graphql.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitFor } from './helpers/wait.ts';

let db: TestDatabase;
let app: TestApp;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestApp(db.url, { runner: { concurrency: 2 } });
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

async function jobStatus(id: string) {
  return (await data(app.url, GetJobDocument, { id })).job;
}

test('when the database ends the process session, its running job is INTERRUPTED and the process goes on under a new worker id', async () => {
  const { createJob: long } = await data(app.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  await waitFor('the job to run', async () => ((await jobStatus(long.id))?.status === 'RUNNING' ? true : undefined));
  const [before] = await db.query<{ worker_id: number }>('SELECT worker_id FROM jobs WHERE id = $1', [long.id]);

  // What a database restart or a network cut does to the session that holds the liveness lock.
  const terminated = await db.query<{ pg_terminate_backend: boolean }>(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE application_name LIKE 'jobql:%:session' AND datname = current_database()`,
  );
  expect(terminated).toEqual([{ pg_terminate_backend: true }]);

  const interrupted = await waitFor('the job to be interrupted', async () => {
    const job = await jobStatus(long.id);
    return job?.status === 'FAILED' ? job : undefined;
  });
  expect(interrupted.error?.code).toBe('INTERRUPTED');
  // The same stored code as a graceful stop; the message says the session was lost.
  expect(interrupted.error?.message).toMatch(/interrupted: the process running it lost its database session/);

  const { createJob: next } = await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { after: 'reconnect' } } });
  const done = await waitFor('a new job to complete', async () => {
    const job = await jobStatus(next.id);
    return job?.status === 'COMPLETED' ? job : undefined;
  });
  expect(done.result).toEqual({ after: 'reconnect' });
  const [after] = await db.query<{ worker_id: number }>('SELECT worker_id FROM jobs WHERE id = $1', [next.id]);
  expect(after?.worker_id).not.toBe(before?.worker_id);
});
