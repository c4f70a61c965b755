import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { GetJobDocument } from './generated/graphql.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';

// Property: whatever a client throws at the server (bodies, variables, ids, inputs), it answers with a client
// error or a success, never a 5xx and never a crash, and the jobs table holds only whole rows it can serve.
let db: TestDatabase;
let app: TestApp;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestApp(db.url, { workerConcurrency: 2 });
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

const KINDS = ['echo', 'sleep', 'fail', 'flaky'];
// Strings of any UTF-16 code units: NUL bytes and lone surrogates included.
const anyString = fc.string({ unit: 'binary', maxLength: 40 });
const anyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    anyString,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(anyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;
const anyNumber = fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 53), fc.constant(-1), fc.constant(0), anyString);

const createJobRequest = fc.record({
  query: fc.constant('mutation($input: CreateJobInput!) { createJob(input: $input) { id status input } }'),
  variables: fc.record(
    {
      input: fc.record(
        {
          kind: fc.oneof(fc.constantFrom(...KINDS), anyString),
          input: fc.oneof(anyJson, fc.record({ ms: anyNumber }), fc.record({ message: anyString }), fc.record({ failures: anyNumber })),
          idempotencyKey: anyString,
          runAt: fc.oneof(
            anyString,
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          ),
          priority: anyNumber,
          maxAttempts: anyNumber,
          timeoutMs: anyNumber,
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  ),
});
const readRequest = fc.oneof(
  fc.record({
    query: fc.constant('query($id: ID!) { job(id: $id) { id } }'),
    variables: fc.record({ id: fc.oneof(anyString, anyNumber) }),
  }),
  fc.record({
    query: fc.constant('query($f: Int, $a: String, $s: [JobStatus!]) { jobs(first: $f, after: $a, status: $s) { edges { cursor } } }'),
    variables: fc.record({ f: anyNumber, a: anyString, s: fc.array(anyString, { maxLength: 3 }) }, { requiredKeys: [] }),
  }),
  fc.record({ query: fc.constant('mutation($id: ID!) { cancelJob(id: $id) { id } }'), variables: fc.record({ id: anyString }) }),
);
const rawBody = fc.oneof(
  anyString,
  anyJson.map((value) => JSON.stringify(value) ?? 'null'),
  fc.record({ query: anyString, variables: anyJson }).map((value) => JSON.stringify(value)),
);
const request = fc.oneof(
  createJobRequest.map((body) => JSON.stringify(body)),
  readRequest.map((body) => JSON.stringify(body)),
  rawBody,
);

test('malformed requests get a client error or a success, never a 5xx, and leave only whole rows', async () => {
  await fc.assert(
    fc.asyncProperty(request, async (body) => {
      const response = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body,
      });
      await response.arrayBuffer();
      expect(response.status).toBeLessThan(500);
      const alive = await fetch(`${app.url}/healthz`);
      await alive.text();
      expect(alive.status).toBe(200);
    }),
    { numRuns: 300 },
  );
  const rows = await db.query<{ id: string; kind: string }>('SELECT id, kind FROM jobs');
  for (const row of rows) {
    expect(KINDS).toContain(row.kind);
    // Each row the requests left behind is a job the API can read back whole.
    const { job } = await data(app.url, GetJobDocument, { id: row.id });
    expect(job?.id).toBe(row.id);
  }
}, 120_000);
