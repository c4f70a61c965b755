import { afterEach, expect, test } from '@jest/globals';
import { CreateJobDocument, GetJobDocument } from './generated/graphql.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';

// A crash (SIGKILL: no shutdown code runs) loses nothing that was recorded, and a job the dead process was
// running is failed as INTERRUPTED by the next start, before it listens.
const db = useTestDatabase();
const servers = createServerGroup();

afterEach(async () => {
  await servers.stopAll();
});

test("a completed job's status and result are returned by job(id) and GET /jobs/{id} after the server is SIGKILLed and started again", async () => {
  const first = await servers.start({ DATABASE_URL: db.url });
  const { createJob } = await data(first.url, CreateJobDocument, { input: { kind: 'echo', input: { kept: ['across', 'a crash'] } } });
  const completed = await waitForJob(first.url, createJob.id, 'COMPLETED');
  expect(await first.kill('SIGKILL')).toBe('SIGKILL');

  const second = await servers.start({ DATABASE_URL: db.url });
  const { job } = await data(second.url, GetJobDocument, { id: createJob.id });
  expect(job).toEqual(completed);
  expect(job).toMatchObject({ status: 'COMPLETED', result: { kept: ['across', 'a crash'] }, error: null, attempt: 1 });
  const response = await fetch(`${second.url}/jobs/${createJob.id}`);
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual(completed);
});

test('a job that was running when the process was SIGKILLed is FAILED with code INTERRUPTED right after restart', async () => {
  const first = await servers.start({ DATABASE_URL: db.url });
  const { createJob } = await data(first.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 60_000 } } });
  await waitForJob(first.url, createJob.id, 'RUNNING');
  await first.kill('SIGKILL');

  const second = await servers.start({ DATABASE_URL: db.url });
  // The first answer after 'listening', with no waiting: recovery runs before the port opens.
  const { job } = await data(second.url, GetJobDocument, { id: createJob.id });
  expect(job).toMatchObject({
    status: 'FAILED',
    result: null,
    attempt: 1,
    error: { code: 'INTERRUPTED', message: expect.stringMatching(/interrupted/i) },
  });
  expect(job?.finishedAt).not.toBeNull();
  expect(await db.query('SELECT id FROM jobs WHERE status = $1', ['running'])).toEqual([]);
  expect(second.logs).toContainEqual(
    expect.objectContaining({ msg: 'recovered the running jobs of processes that are gone', jobIds: [createJob.id] }),
  );
});
