import { expect, test } from '@jest/globals';
import fc from 'fast-check';
import { GetJobDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';

// Property: whatever a client throws at the server (bodies, variables, ids, inputs), it answers with a client
// error or a success, never a 5xx and never a crash, and the jobs table holds only whole rows it can serve.
const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 2 } });

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

/** Never a 5xx, and never a masked "Unexpected error." inside a 2xx/4xx either: every malformed request is the client's. */
async function expectClientErrorOrSuccess(response: Response): Promise<void> {
  const text = await response.text();
  expect(response.status).toBeLessThan(500);
  expect(text).not.toContain('INTERNAL_SERVER_ERROR');
}

async function expectAlive(): Promise<void> {
  const alive = await fetch(`${app.url}/healthz`);
  await alive.text();
  expect(alive.status).toBe(200);
}

test('malformed requests get a client error or a success, never a 5xx, and leave only whole rows', async () => {
  await fc.assert(
    fc.asyncProperty(request, async (body) => {
      const response = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body,
      });
      await expectClientErrorOrSuccess(response);
      await expectAlive();
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

// GET /graphql reads the operation from the query string: every parameter can be missing, repeated, not JSON,
// JSON of the wrong type, or not even valid percent-encoding.
const paramName = fc.oneof(fc.constantFrom('query', 'variables', 'extensions', 'operationName'), anyString);
const paramValue = fc.oneof(
  anyString,
  anyJson.map((value) => JSON.stringify(value) ?? 'null'),
  anyJson.map((value) => (JSON.stringify(value) ?? 'null').slice(0, -1)), // JSON cut short
  fc.constantFrom('{ jobs { edges { cursor } } }', 'query($id: ID!) { job(id: $id) { id } }', '{"id":1}', '{', 'null', '[]'),
);
const encodedQueryString = fc
  .array(fc.tuple(paramName, paramValue), { maxLength: 5 })
  .map((pairs) => new URLSearchParams(pairs).toString());
// Raw query strings: broken percent-escapes (%ZZ, %E0%A4), bare braces and quotes, as a hand-written curl sends them.
const rawQueryString = fc.string({
  unit: fc.constantFrom('%', 'Z', '2', 'E', '0', 'A', '{', '}', '"', '=', '&', 'q', 'u', 'e', 'r', 'y', 'v', 'a', ':', '[', ']', '+', ' '),
  maxLength: 40,
});
const queryString = fc.oneof(encodedQueryString, rawQueryString, fc.constantFrom('variables=notjson', 'extensions=notjson'));

test('GET /graphql: a malformed query string gets a client error or a success, never a 5xx or a masked error', async () => {
  await fc.assert(
    fc.asyncProperty(
      queryString,
      fc.constantFrom('application/json', 'application/graphql-response+json', '*/*'),
      async (search, accept) => {
        const response = await fetch(`${app.url}/graphql?${search}`, { headers: { accept }, signal: AbortSignal.timeout(10_000) });
        const text = await response.clone().text();
        await expectClientErrorOrSuccess(response);
        // With the GraphQL-over-HTTP media type, a request that ran nothing (errors, no data) is a 4xx. (With
        // application/json, Yoga keeps the older convention of 200 for some of them, as the spec allows.)
        if (accept === 'application/graphql-response+json' && text.startsWith('{')) {
          const body = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
          if (body.errors && !('data' in body)) expect(response.status).toBeGreaterThanOrEqual(400);
        }
        await expectAlive();
      },
    ),
    { numRuns: 300 },
  );
}, 120_000);

test('GET /graphql: variables or extensions that are not JSON are a 400 that names the parameter', async () => {
  const query = encodeURIComponent('{ jobs { edges { cursor } } }');
  for (const [parameter, value] of [
    ['variables', 'notjson'],
    ['extensions', 'notjson'],
    ['variables', '%7B%7D%7D'], // {}}
  ] as const) {
    for (const accept of ['application/json', 'application/graphql-response+json']) {
      const response = await fetch(`${app.url}/graphql?query=${query}&${parameter}=${value}`, { headers: { accept } });
      const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(response.status).toBe(400);
      expect(body.errors[0]?.extensions.code).toBe('BAD_REQUEST');
      expect(body.errors[0]?.message).toContain(`"${parameter}"`);
      expect(body.errors[0]?.message).toContain('not valid JSON');
    }
  }
  // A form-encoded POST is refused before its parameters are read: only JSON bodies are served (a page on
  // another site can send a form without a preflight).
  const form = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/graphql-response+json' },
    body: `query=${query}&variables=notjson`,
  });
  expect(form.status).toBe(415);
  expect(await form.text()).toContain('UNSUPPORTED_MEDIA_TYPE');
});

// Every route and method, known or not: the probes, /metrics, /jobs/{id}, /graphql and unknown paths.
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;
const pathSegment = fc.oneof(
  fc.uuid().map(String),
  fc.string({ unit: fc.constantFrom('a', 'Z', '0', '%', '2', 'F', '.', '-', '~', '{', '}', ' '), maxLength: 12 }),
  anyString.map((text) => encodeURIComponent(text.replace(/[\uD800-\uDFFF]/g, ''))),
);
const anyPath = fc.oneof(
  fc.constantFrom('/graphql', '/healthz', '/readyz', '/metrics', '/jobs/', '/jobs', '/', '/graphql/', '/GRAPHQL', '//graphql'),
  pathSegment.map((id) => `/jobs/${id}`),
  fc.array(pathSegment, { minLength: 1, maxLength: 3 }).map((segments) => `/${segments.join('/')}`),
);
const anyRequest = fc.record({
  method: fc.constantFrom(...METHODS),
  path: anyPath,
  search: fc.option(queryString, { nil: undefined }),
  contentType: fc.option(
    fc.constantFrom(
      'application/json',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/graphql',
    ),
    { nil: undefined },
  ),
  body: fc.option(rawBody, { nil: undefined }),
});

test('every route and method, known or unknown, with any query string and body: never a 5xx, never a masked error', async () => {
  await fc.assert(
    fc.asyncProperty(anyRequest, async ({ method, path, search, contentType, body }) => {
      const canHaveBody = method !== 'GET' && method !== 'HEAD';
      const response = await fetch(`${app.url}${path}${search === undefined ? '' : `?${search}`}`, {
        method,
        headers: contentType ? { 'content-type': contentType } : {},
        body: canHaveBody ? body : undefined,
        signal: AbortSignal.timeout(10_000),
      });
      await expectClientErrorOrSuccess(response);
      await expectAlive();
    }),
    { numRuns: 400 },
  );
}, 180_000);
