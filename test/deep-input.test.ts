import { afterEach, describe, expect, test } from '@jest/globals';
import { print } from 'graphql';
import { MAX_JSON_DEPTH } from '../src/jobs/json-check.ts';
import { CreateJobDocument, CreateJobsDocument, GetJobDocument, ListJobsDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { insertJob, jsonText, useTestDatabase } from './helpers/database.ts';
import { execute, postGraphQL } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { waitFor } from './helpers/wait.ts';

// JSON nested past MAX_JSON_DEPTH is refused at the door with the same answer on any process, and a row that
// holds such JSON anyway (written by SQL, or accepted before the limit) neither strands the jobs claimed with
// it nor breaks the reads that show it.
const db = useTestDatabase();
// API only: nothing runs, so what createJob wrote stays as it is.
const api = useTestApp(db, { runner: { concurrency: 0 } });
const servers = createServerGroup();

const nestedArrayText = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const nestedObjectText = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const nestedArray = (depth: number): unknown => JSON.parse(nestedArrayText(depth));
const nestedObject = (depth: number): unknown => JSON.parse(nestedObjectText(depth));
/** The same value as a GraphQL inline literal. */
const nestedLiteral = (depth: number) => `${'{a:'.repeat(depth)}1${'}'.repeat(depth)}`;

afterEach(async () => {
  await servers.stopAll();
});

async function jobCount(): Promise<number> {
  const [row] = await db.query<{ count: string }>('SELECT count(*) FROM jobs');
  return Number(row?.count);
}

describe('createJob refuses input nested deeper than MAX_JSON_DEPTH', () => {
  test('the limit is 64 levels: 64 is accepted, 65 is not', async () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    const ok = await execute(api.url, CreateJobDocument, { input: { kind: 'echo', input: nestedArray(64) } });
    expect(ok.errors).toBeUndefined();
    expect(ok.data?.createJob.input).toEqual(nestedArray(64));
    const refused = await execute(api.url, CreateJobDocument, { input: { kind: 'echo', input: nestedObject(65) } });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'input.input' });
    expect(refused.errors?.[0]?.message).toMatch(/nested .*deeper than 64/);
  });

  for (const depth of [65, 1_500, 5_000, 100_000]) {
    test(`as a variable ${depth} deep: BAD_USER_INPUT, and nothing is written`, async () => {
      const before = await jobCount();
      // Bodies written by hand: JSON.stringify itself cannot write values this deep.
      const response = await postGraphQL(
        api.url,
        `{"query": ${JSON.stringify(print(CreateJobDocument))}, "variables": {"input": {"kind": "echo", "input": ${nestedArrayText(depth)}}}}`,
      );
      expect(response.httpStatus).toBe(200);
      expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'input.input' });
      const batch = await postGraphQL(
        api.url,
        `{"query": ${JSON.stringify(print(CreateJobsDocument))},
          "variables": {"inputs": [{"kind": "echo"}, {"kind": "echo", "input": ${nestedObjectText(depth)}}]}}`,
      );
      expect(batch.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'inputs.1.input', index: 1 });
      expect(await jobCount()).toBe(before);
    });
  }

  // A literal that fits in the document's bracket limit reaches createJob's own check; a deeper one is refused
  // before graphql-js parses (recursively) the document; one as long as 100,000 levels is past
  // MAX_DOCUMENT_BYTES, refused before even the bracket count.
  const literalCases = [
    { depth: 65, code: 'BAD_USER_INPUT' },
    { depth: 1_500, code: 'QUERY_TOO_COMPLEX' },
    { depth: 100_000, code: 'DOCUMENT_TOO_LARGE' },
  ];
  for (const { depth, code } of literalCases) {
    test(`as an inline literal ${depth} deep: ${code}, and nothing is written`, async () => {
      const before = await jobCount();
      const response = await postGraphQL(api.url, {
        query: `mutation { createJob(input: {kind: "echo", input: ${nestedLiteral(depth)}}) { id } }`,
      });
      expect(response.httpStatus).toBeLessThan(500);
      expect(response.data ?? null).toBeNull();
      expect(response.errors?.[0]?.extensions?.code).toBe(code);
      expect(await jobCount()).toBe(before);
    });
  }

  test('a freshly started process gives the same answer for a 1,500-deep input as its first request', async () => {
    const cold = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '0' });
    const response = await execute(cold.url, CreateJobDocument, { input: { kind: 'echo', input: nestedArray(1_500) } });
    expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'input.input' });
  });
});

describe('a row holding JSON too deep to read', () => {
  /** A queued job whose input (or result) is a 1,500-deep array, as only SQL can write it now. */
  function insertDeepRow(options: { kind?: string; column?: 'input' | 'result' } = {}): Promise<string> {
    return insertJob(db, { kind: options.kind ?? 'echo', [options.column ?? 'input']: jsonText(nestedArrayText(1500)) });
  }

  test('is read as null with an UNREADABLE_JSON error by job, jobs and GET /jobs/{id}; no 500', async () => {
    const id = await insertDeepRow();
    const one = await execute(api.url, GetJobDocument, { id });
    expect(one.httpStatus).toBe(200);
    expect(one.data?.job).toMatchObject({ id, status: 'QUEUED', input: null });
    expect(one.errors).toEqual([
      expect.objectContaining({ path: ['job', 'input'], extensions: expect.objectContaining({ code: 'UNREADABLE_JSON' }) }),
    ]);

    const page = await execute(api.url, ListJobsDocument, { first: 100 });
    expect(page.httpStatus).toBe(200);
    expect(page.data?.jobs.edges.map((edge) => edge.node.id)).toContain(id);
    expect(page.errors?.every((error) => error.extensions?.code === 'UNREADABLE_JSON')).toBe(true);

    const rest = await fetch(`${api.url}/jobs/${id}`);
    expect(rest.status).toBe(200);
    expect(await rest.json()).toMatchObject({ id, status: 'QUEUED', input: null });

    const resultId = await insertDeepRow({ column: 'result' });
    const withResult = await execute(api.url, GetJobDocument, { id: resultId });
    expect(withResult.data?.job).toMatchObject({ id: resultId, result: null, input: {} });
    expect(withResult.errors?.[0]?.extensions?.code).toBe('UNREADABLE_JSON');
  });

  test('ends FAILED with BAD_INPUT when claimed, while the other jobs of the claim run', async () => {
    await db.query('DELETE FROM jobs');
    const good: string[] = [];
    for (const n of [1, 2, 3]) good.push(await insertJob(db, { input: { n } }));
    const deep = await insertDeepRow();
    // An input its kind rejects is as unusable, whatever attempts it has left.
    const rejected = await insertJob(db, { kind: 'sleep', input: { ms: 'soon' }, max_attempts: 3 });
    const worker = await servers.start({ DATABASE_URL: db.url, WORKER_CONCURRENCY: '8' });
    for (const id of good) await waitForJob(worker.url, id, 'COMPLETED');
    await waitFor('the deep job to end', async () => {
      const [row] = await db.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [deep]);
      return row?.status === 'running' || row?.status === 'queued' ? undefined : true;
    });
    const failed = await execute(worker.url, GetJobDocument, { id: deep });
    expect(failed.data?.job).toMatchObject({
      status: 'FAILED',
      attempt: 1,
      input: null,
      error: { code: 'BAD_INPUT', message: expect.stringMatching(/deeper than 64/) },
    });
    const other = await waitForJob(worker.url, rejected, 'FAILED');
    expect(other).toMatchObject({ attempt: 1, error: { code: 'BAD_INPUT', message: expect.stringMatching(/sleep/) } });
    const [running] = await db.query<{ count: string }>("SELECT count(*) FROM jobs WHERE status = 'running'");
    expect(running?.count).toBe('0');
  });
});
