import { expect, test } from '@jest/globals';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { postGraphQL } from './helpers/graphql.ts';

// Query.kinds: what a client (a form, a dashboard) can learn of the kinds a server runs.
const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 0 } });

type Kind = {
  name: string;
  inputSchema: { type?: string; properties?: Record<string, unknown>; required?: string[] } | null;
  timeoutMs: number | null;
};

test("kinds lists the server's kinds by name, each with its input as JSON Schema and its default timeout", async () => {
  const response = await postGraphQL<{ kinds: Kind[] }>(app.url, { query: '{ kinds { name inputSchema timeoutMs } }' });
  expect(response.errors).toBeUndefined();
  const kinds = response.data?.kinds ?? [];
  expect(kinds.map((kind) => kind.name)).toEqual(['echo', 'fail', 'flaky', 'sleep']);
  const sleep = kinds.find((kind) => kind.name === 'sleep');
  // The schema says what createJob checks: `sleep` takes a whole `ms` and nothing it does not know.
  expect(sleep?.inputSchema).toMatchObject({ type: 'object', required: ['ms'], additionalProperties: false });
  expect(sleep?.inputSchema?.properties?.ms).toMatchObject({ type: 'integer' });
  const flaky = kinds.find((kind) => kind.name === 'flaky');
  expect(flaky?.inputSchema?.properties?.failures).toMatchObject({ type: 'integer', minimum: 0, maximum: 100 });
  for (const kind of kinds) expect(kind.timeoutMs === null || Number.isInteger(kind.timeoutMs)).toBe(true);
});

test('an input the schema of kinds rejects is also refused by createJob', async () => {
  const response = await postGraphQL<{ kinds: Kind[] }>(app.url, { query: '{ kinds { name inputSchema } }' });
  const sleep = response.data?.kinds.find((kind) => kind.name === 'sleep');
  expect(sleep?.inputSchema?.properties).not.toHaveProperty('bogus');
  const created = await postGraphQL(app.url, {
    query: 'mutation { createJob(input: {kind: "sleep", input: {ms: 10, bogus: true}}) { id } }',
  });
  expect(created.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
});
