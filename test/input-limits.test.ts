import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { buildClientSchema, getIntrospectionQuery, type IntrospectionQuery, lexicographicSortSchema, printSchema } from 'graphql';
import WebSocket from 'ws';
import { MAX_ALIASES, MAX_DEPTH, MAX_FIELDS, MAX_INTROSPECTION_LISTS } from '../src/graphql/limits.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { postGraphQL } from './helpers/graphql.ts';

// Each limit at the limit and one past it; past it a client error with a code, and the server serves on.
const MAX_BODY = 4096;
const db = useTestDatabase();
const app = useTestApp(db, {
  runner: { concurrency: 0 },
  limits: { maxBodyBytes: MAX_BODY },
  http: { graphiql: true, introspection: true },
});
const locked = useTestApp(db, { runner: { concurrency: 0 }, http: { graphiql: false, introspection: false } });

const code = (response: { errors?: readonly unknown[] }) =>
  (response.errors?.[0] as { extensions?: { code?: unknown } } | undefined)?.extensions?.code;

describe('request body size', () => {
  test(`a body of ${MAX_BODY} bytes is served; one byte more is 413 PAYLOAD_TOO_LARGE`, async () => {
    const body = (padding: number) => JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(padding) } });
    const base = Buffer.byteLength(body(0));
    const atLimit = await postGraphQL(app.url, body(MAX_BODY - base));
    expect(atLimit.httpStatus).toBe(200);
    expect(atLimit.data).toEqual({ __typename: 'Query' });
    const over = await postGraphQL(app.url, body(MAX_BODY - base + 1));
    expect(over.httpStatus).toBe(413);
    expect(code(over)).toBe('PAYLOAD_TOO_LARGE');
    expect((await postGraphQL(app.url, { query: '{ __typename }' })).data).toEqual({ __typename: 'Query' });
  });
});

describe('operation shape', () => {
  test('the standard introspection query is served, and describes the committed schema.graphql', async () => {
    const response = await postGraphQL<IntrospectionQuery>(app.url, { query: getIntrospectionQuery() });
    expect(response.errors).toBeUndefined();
    const printed = `${printSchema(lexicographicSortSchema(buildClientSchema(response.data as IntrospectionQuery)))}\n`;
    expect(printed).toBe(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));
  });

  test(`a selection nested ${MAX_DEPTH + 1} deep beside __schema is still QUERY_TOO_COMPLEX`, async () => {
    let deep = 'code';
    for (let level = 0; level < MAX_DEPTH - 4; level++) deep = `more${level} { ${deep} }`;
    const query = `{ __schema { queryType { name } } jobs { edges { node { error { ${deep} } } } } }`;
    const codes = (await postGraphQL(app.url, { query })).errors?.map(
      (error) => (error as { extensions?: { code?: string } }).extensions?.code,
    );
    expect(codes).toContain('QUERY_TOO_COMPLEX');
  });

  test(`introspection lists nested ${MAX_INTROSPECTION_LISTS} deep are served; ${MAX_INTROSPECTION_LISTS + 1} are QUERY_TOO_COMPLEX`, async () => {
    expect((await postGraphQL(app.url, { query: '{ __schema { types { fields { args { name } } } } }' })).errors).toBeUndefined();
    const fourLists = '{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }';
    expect(code(await postGraphQL(app.url, { query: fourLists }))).toBe('QUERY_TOO_COMPLEX');
  });

  test(`${MAX_ALIASES} aliases are served; ${MAX_ALIASES + 1} are QUERY_TOO_COMPLEX`, async () => {
    const aliased = (count: number) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    expect((await postGraphQL(app.url, { query: aliased(MAX_ALIASES) })).errors).toBeUndefined();
    expect(code(await postGraphQL(app.url, { query: aliased(MAX_ALIASES + 1) }))).toBe('QUERY_TOO_COMPLEX');
  });

  test(`${MAX_FIELDS} fields are served; ${MAX_FIELDS + 1} are QUERY_TOO_COMPLEX`, async () => {
    const fields = (count: number) => `{ ${'__typename '.repeat(count)}}`;
    // (on the server with the default body limit: these queries are larger than the other's 4 KiB)
    expect((await postGraphQL(locked.url, { query: fields(MAX_FIELDS) })).errors).toBeUndefined();
    expect(code(await postGraphQL(locked.url, { query: fields(MAX_FIELDS + 1) }))).toBe('QUERY_TOO_COMPLEX');
  });

  test('fragments spread inside fragments cannot blow up the check itself', async () => {
    let query = 'fragment F0 on Query { __typename }';
    for (let i = 1; i < 30; i++) query += ` fragment F${i} on Query { ...F${i - 1} ...F${i - 1} }`;
    query += ' { ...F29 }';
    expect(code(await postGraphQL(app.url, { query }))).toBe('QUERY_TOO_COMPLEX');
  });

  test('batched operations are refused', async () => {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    await response.text();
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });
});

describe('introspection and GraphiQL', () => {
  test('can be turned off (and are off by default with NODE_ENV=production)', async () => {
    expect((await postGraphQL(app.url, { query: '{ __schema { queryType { name } } }' })).errors).toBeUndefined();
    expect(code(await postGraphQL(locked.url, { query: '{ __schema { queryType { name } } }' }))).toBe('GRAPHQL_VALIDATION_FAILED');
    const pageType = async (url: string) => {
      const response = await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } });
      await response.text();
      return response.headers.get('content-type') ?? '';
    };
    expect(await pageType(app.url)).toMatch(/text\/html/);
    expect(await pageType(locked.url)).not.toMatch(/text\/html/);
    const { loadConfig } = await import('../src/config.ts');
    expect(loadConfig({ NODE_ENV: 'production' })).toMatchObject({ http: { graphiql: false, introspection: false } });
    expect(loadConfig({})).toMatchObject({ http: { graphiql: true, introspection: true } });
  });

  test('without introspection, errors suggest no names of the schema', async () => {
    const messages = async (url: string, body: unknown) =>
      ((await postGraphQL(url, body)).errors ?? []).map((error) => (error as { message: string }).message).join('\n');
    const misspelt = [
      { query: '{ jobb(id: "x") { id } }' },
      { query: '{ jobs(frist: 1) { pageInfo { hasNextPage } } }' },
      { query: 'query ($status: [JobStatus!]) { jobs(status: $status) { pageInfo { hasNextPage } } }', variables: { status: ['FAILD'] } },
    ];
    for (const body of misspelt) {
      // With introspection the suggestions help (the schema is public anyway)...
      expect(await messages(app.url, body)).toMatch(/Did you mean/);
      // ...without it they would disclose what introspection hides.
      const hidden = await messages(locked.url, body);
      expect(hidden).not.toBe('');
      expect(hidden).not.toMatch(/Did you mean/);
    }
  });
});

describe('WebSocket messages', () => {
  test('a message over 1 MiB closes the connection, and the server keeps serving', async () => {
    const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    const closed = new Promise<number>((resolve) => socket.on('close', (closeCode) => resolve(closeCode)));
    await new Promise((resolve) => socket.on('open', resolve));
    socket.send('x'.repeat(1024 * 1024 + 1));
    expect(await closed).toBe(1009);
    expect((await postGraphQL(app.url, { query: '{ __typename }' })).data).toEqual({ __typename: 'Query' });
  });
});
