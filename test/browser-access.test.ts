import { request } from 'node:http';
import { describe, expect, test } from '@jest/globals';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.ts';
import { createOriginPolicy } from '../src/http/origin.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { postGraphQL } from './helpers/graphql.ts';

// What a web page on another site can make a browser do to this server: read cross-origin (CORS), send
// form and multipart POSTs (no preflight), open WebSockets, and reach 127.0.0.1 under its own name (DNS
// rebinding, seen only in the Host header). Requests are sent as a browser would, with Origin and Host set.
const FOREIGN = 'https://evil.example';
const FRONTEND = 'https://app.example';
const KEY = 'acme-key-0123456789abcdef';
const CREATE = 'mutation { createJob(input: { kind: "echo", input: { message: "csrf" } }) { id } }';
const db = useTestDatabase();
const open = useTestApp(db, { runner: { concurrency: 0 } });
const keyed = useTestApp(db, {
  runner: { concurrency: 0 },
  auth: { apiKeys: [{ tenant: 'acme', key: KEY }] },
  http: { corsOrigins: [FRONTEND] },
});

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** node:http, because fetch will not send a Host header of our choosing. */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...options.headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const jobCount = async () => Number((await db.query<{ n: string }>('select count(*) as n from jobs'))[0]?.n);

/** Resolves with the HTTP status a WebSocket upgrade was refused with, or 101 when it was accepted. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', { headers });
    socket.on('open', () => {
      socket.close();
      resolve(101);
    });
    socket.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    socket.on('error', () => resolve(0));
  });
}

describe('cross-origin reads (CORS)', () => {
  test('a foreign origin gets no Access-Control-Allow-Origin, on the request and on its preflight', async () => {
    const post = await send(`${open.url}/graphql`, {
      method: 'POST',
      headers: { origin: FOREIGN, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ jobs { edges { node { id input } } } }' }),
    });
    expect(post.headers['access-control-allow-origin']).toBeUndefined();
    expect(post.status).toBe(403);
    expect(JSON.parse(post.body).errors[0].extensions.code).toBe('ORIGIN_NOT_ALLOWED');
    const preflight = await send(`${open.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: FOREIGN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    const rest = await send(`${open.url}/jobs/00000000-0000-0000-0000-000000000000`, { headers: { origin: FOREIGN } });
    expect(rest.headers['access-control-allow-origin']).toBeUndefined();
    expect(rest.status).toBe(403);
  });

  test('a page served by the server itself (same origin, as GraphiQL) is served', async () => {
    const response = await send(`${open.url}/graphql`, {
      method: 'POST',
      headers: { origin: open.url, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).data).toEqual({ __typename: 'Query' });
  });

  test('with API keys, an allowed origin passes its preflight without a key and reads with one', async () => {
    for (const path of ['/graphql', '/jobs/00000000-0000-0000-0000-000000000000']) {
      const preflight = await send(`${keyed.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin: FRONTEND,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(FRONTEND);
      expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/authorization/);
    }
    const post = await send(`${keyed.url}/graphql`, {
      method: 'POST',
      headers: { origin: FRONTEND, 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ query: '{ jobs { edges { node { id } } } }' }),
    });
    expect(post.status).toBe(200);
    expect(post.headers['access-control-allow-origin']).toBe(FRONTEND);
    expect(JSON.parse(post.body).errors).toBeUndefined();
    const rest = await send(`${keyed.url}/jobs/00000000-0000-0000-0000-000000000000`, {
      headers: { origin: FRONTEND, authorization: `Bearer ${KEY}` },
    });
    expect(rest.status).toBe(404);
    expect(rest.headers['access-control-allow-origin']).toBe(FRONTEND);
    // and a foreign origin still gets nothing on the keyed server
    const foreign = await send(`${keyed.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: FOREIGN, 'access-control-request-method': 'POST' },
    });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('requests a browser sends without a preflight', () => {
  test('form-encoded and multipart POST mutations are refused with 4xx and write no row (even without Origin)', async () => {
    const before = await jobCount();
    const form = await send(`${open.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: CREATE }).toString(),
    });
    const boundary = 'x0x0x0';
    const multipart = await send(`${open.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: `--${boundary}\r\ncontent-disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: CREATE })}\r\n--${boundary}\r\ncontent-disposition: form-data; name="map"\r\n\r\n{}\r\n--${boundary}--\r\n`,
    });
    const text = await send(`${open.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: CREATE }),
    });
    for (const response of [form, multipart, text]) {
      expect(response.status).toBe(415);
      expect(JSON.parse(response.body).errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(await jobCount()).toBe(before);
  });

  test('a mutation in a GET is still refused, and JSON POSTs still run', async () => {
    const before = await jobCount();
    const get = await send(`${open.url}/graphql?query=${encodeURIComponent(CREATE)}`, {});
    expect(get.status).toBeGreaterThanOrEqual(400);
    expect(get.status).toBeLessThan(500);
    expect(await jobCount()).toBe(before);
    const query = await send(`${open.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {});
    expect(JSON.parse(query.body).data).toEqual({ __typename: 'Query' });
    expect((await postGraphQL(open.url, { query: CREATE })).errors).toBeUndefined();
    expect(await jobCount()).toBe(before + 1);
  });
});

describe('WebSockets', () => {
  test('a foreign Origin is refused; no Origin (not a browser) and the allowed origin are accepted', async () => {
    expect(await upgradeStatus(open.url, { origin: FOREIGN })).toBe(403);
    expect(await upgradeStatus(open.url, {})).toBe(101);
    expect(await upgradeStatus(open.url, { origin: open.url })).toBe(101);
    expect(await upgradeStatus(keyed.url, { origin: FOREIGN })).toBe(403);
    expect(await upgradeStatus(keyed.url, { origin: FRONTEND })).toBe(101);
  });
});

describe('DNS rebinding (Host)', () => {
  test('in open mode a foreign Host is refused over HTTP, on GET /jobs/{id} and on WebSocket; loopback names are served', async () => {
    const post = await send(`${open.url}/graphql`, {
      method: 'POST',
      // what a rebound page sends: its own name as Host, and as Origin (so it is "same-origin")
      headers: { host: 'evil.example:4000', origin: 'http://evil.example:4000', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ jobs { edges { node { id input } } } }' }),
    });
    expect(post.status).toBe(403);
    expect(JSON.parse(post.body).errors[0].extensions.code).toBe('HOST_NOT_ALLOWED');
    const rest = await send(`${open.url}/jobs/00000000-0000-0000-0000-000000000000`, { headers: { host: 'evil.example' } });
    expect(rest.status).toBe(403);
    expect(await upgradeStatus(open.url, { host: 'evil.example:4000' })).toBe(403);
    const port = new URL(open.url).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST']) {
      const served = await send(`${open.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { host } });
      expect({ host, status: served.status }).toEqual({ host, status: 200 });
    }
    // Probes carry no tenant data and are asked for by IP or service name: any Host.
    expect((await send(`${open.url}/healthz`, { headers: { host: 'evil.example' } })).status).toBe(200);
  });

  test('with API keys any Host is served (a rebound page has no key)', async () => {
    const response = await send(`${keyed.url}/graphql`, {
      method: 'POST',
      headers: { host: 'jobs.internal:4000', 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(response.status).toBe(200);
  });
});

describe('Server-Sent Events', () => {
  test('a subscription over SSE gets the same Origin rules', async () => {
    const query = encodeURIComponent('subscription { jobUpdated(id: "00000000-0000-0000-0000-000000000000") { id } }');
    const foreign = await send(`${open.url}/graphql?query=${query}`, { headers: { accept: 'text/event-stream', origin: FOREIGN } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    const allowed = await send(`${keyed.url}/graphql?query=${query}`, {
      headers: { accept: 'text/event-stream', origin: FRONTEND, authorization: `Bearer ${KEY}` },
    });
    expect(allowed.headers['access-control-allow-origin']).toBe(FRONTEND);
    expect(allowed.body).toMatch(/NOT_FOUND/);
  });
});

describe('the policy (CORS_ORIGINS, ALLOWED_HOSTS, HOST)', () => {
  test('host names by mode and settings', () => {
    const open0 = createOriginPolicy({ corsOrigins: [], allowedHosts: null, openMode: true, bindHost: '0.0.0.0' });
    expect(['localhost:4000', '127.0.0.1', '[::1]:4000', 'localhost.'].map(open0.hostAllowed)).toEqual([true, true, true, true]);
    expect(['evil.example', '127.0.0.1.evil.example', 'localhost.evil.example:4000'].map(open0.hostAllowed)).toEqual([false, false, false]);
    const lan = createOriginPolicy({ corsOrigins: [], allowedHosts: null, openMode: true, bindHost: '192.168.1.5' });
    expect([lan.hostAllowed('192.168.1.5:4000'), lan.hostAllowed('evil.example')]).toEqual([true, false]);
    const listed = createOriginPolicy({ corsOrigins: [], allowedHosts: ['jobs.lan'], openMode: true, bindHost: '0.0.0.0' });
    expect([listed.hostAllowed('jobs.lan:4000'), listed.hostAllowed('localhost'), listed.hostAllowed('evil.example')]).toEqual([
      true,
      true,
      false,
    ]);
    const keys = createOriginPolicy({ corsOrigins: [], allowedHosts: null, openMode: false, bindHost: '0.0.0.0' });
    expect(keys.hostAllowed('anything.example')).toBe(true);
    const keysListed = createOriginPolicy({ corsOrigins: [], allowedHosts: ['api.example'], openMode: false, bindHost: '0.0.0.0' });
    expect([keysListed.hostAllowed('api.example'), keysListed.hostAllowed('other.example')]).toEqual([true, false]);
  });

  test('origins: none, same, listed, refused', () => {
    const policy = createOriginPolicy({ corsOrigins: [FRONTEND], allowedHosts: null, openMode: true, bindHost: '127.0.0.1' });
    expect(policy.originOf(undefined, 'localhost:4000')).toBe('none');
    expect(policy.originOf('http://localhost:4000', 'localhost:4000')).toBe('same');
    expect(policy.originOf(FRONTEND, 'localhost:4000')).toBe('cross');
    expect(policy.originOf('null', 'localhost:4000')).toBe('refused');
    expect(policy.originOf('http://localhost:3000', 'localhost:4000')).toBe('refused');
  });

  test('CORS_ORIGINS must hold origins', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://App.example, http://localhost:3000' }).http.corsOrigins).toEqual([
      'https://app.example',
      'http://localhost:3000',
    ]);
    expect(loadConfig({}).http.corsOrigins).toEqual([]);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://app.example/path' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: 'app.example' })).toThrow(/CORS_ORIGINS/);
    expect(loadConfig({ ALLOWED_HOSTS: 'Jobs.lan, api.example' }).http.allowedHosts).toEqual(['jobs.lan', 'api.example']);
  });
});
