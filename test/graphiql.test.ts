import { afterAll, beforeAll, expect } from '@jest/globals';
import type { BrowserContext } from 'playwright-core';
import { CreateJobDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { browserTestFor, launchTestBrowser, type TestBrowser } from './helpers/browser.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';

// GraphiQL as a person uses it, in Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it):
// the page loads with nothing from outside the server, the Docs pane lists the schema (which needs the
// introspection query to pass the operation limits), and a query runs. Without Chromium the test is skipped
// on a developer's machine, and fails under CI=true, where it must run.
const browserTest = browserTestFor('graphiql.test.ts');

const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 0 }, http: { graphiql: true, introspection: true } });
let testBrowser: TestBrowser | null = null;
let browser: BrowserContext;

beforeAll(async () => {
  testBrowser = await launchTestBrowser('jobql-graphiql-');
  if (!testBrowser) return;
  browser = testBrowser.context;
});

afterAll(async () => {
  await testBrowser?.close();
});

browserTest(
  'GraphiQL at /graphql shows the schema in its Docs pane and runs a query, loading nothing from another host',
  async () => {
    await data(app.url, CreateJobDocument, { input: { kind: 'echo', input: { seen: 'in graphiql' }, runAt: '2100-01-01T00:00:00Z' } });
    const requested: string[] = [];
    browser.on('request', (request) => requested.push(request.url()));
    const page = await browser.newPage();
    page.on('websocket', (socket) => requested.push(socket.url()));
    const query = '{ jobs(first: 5) { edges { node { kind status input } } } }';
    await page.goto(`${app.url}/graphql?query=${encodeURIComponent(query)}`);

    // The Docs pane is built from the introspection result: "Error fetching schema" when it is refused.
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click({ timeout: 60_000 });
    await page.getByRole('link', { name: 'Mutation' }).click({ timeout: 30_000 });
    await page.getByText('createJob', { exact: true }).waitFor({ timeout: 30_000 });

    await page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }).click();
    const response = page.locator('.graphiql-response');
    await response.getByText('"in graphiql"').waitFor({ timeout: 30_000 });
    // The result is shown in an editor, line by line: compare its text with the spaces folded.
    const shown = ((await response.textContent()) ?? '').replace(/\s+/g, ' ');
    expect(shown).toContain(
      '{ "data": { "jobs": { "edges": [ { "node": { "kind": "echo", "status": "QUEUED", "input": { "seen": "in graphiql" } } } ] } }',
    );
    await page.close();

    // Every request went to this server; data: and blob: URLs (GraphiQL's inlined fonts and editor workers) are
    // not requests to any host.
    const server = new URL(app.url).host;
    const elsewhere = requested.filter((url) => !/^(data|blob):/.test(url) && new URL(url).host !== server);
    expect(elsewhere).toEqual([]);
    expect(requested).toContain(`${app.url}/graphql`);
  },
  180_000,
);
