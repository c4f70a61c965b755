import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { BrowserContext, Page } from 'playwright-core';
import { createJobqlClient, type JobqlClient } from '../src/client/index.ts';
import { DASHBOARD_CSP } from '../src/http/dashboard.ts';
import { useTestApp } from './helpers/app.ts';
import { browserTestFor, launchTestBrowser, type TestBrowser } from './helpers/browser.ts';
import { useTestDatabase } from './helpers/database.ts';

// The dashboard at /ui as a person uses it, in Debian's Chromium (as in graphiql.test.ts): live list, job page,
// cancel, the key prompt and tenants, nothing from another host, the CSP header. Screenshots of the list and a
// job page go to test-results/screenshots/ (gitignored) for a person to look at. Waits are generous and no
// assertion is about time: the machine may be busy.
const browserTest = browserTestFor('dashboard.test.ts');
const SCREENSHOTS = path.resolve('test-results/screenshots');
const WAIT = { timeout: 60_000 };
const TENANT_A = 'tenant-a-key-0123456789abcdef';
const TENANT_B = 'tenant-b-key-0123456789abcdef';

const db = useTestDatabase();
const open = useTestApp(db, { runner: { concurrency: 2 } });
// The same database behind a second process with API keys; its jobs run on the open process's runner.
const keyed = useTestApp(db, {
  runner: { concurrency: 0 },
  auth: {
    apiKeys: [
      { tenant: 'tenant-a', key: TENANT_A },
      { tenant: 'tenant-b', key: TENANT_B },
    ],
  },
});
let testBrowser: TestBrowser | null = null;
let browser: BrowserContext;
const clients: JobqlClient[] = [];

beforeAll(async () => {
  testBrowser = await launchTestBrowser('jobql-dashboard-', { width: 1280, height: 800 });
  if (!testBrowser) return;
  browser = testBrowser.context;
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  for (const client of clients.splice(0)) client.dispose();
  await testBrowser?.close();
});

function client(url: string, apiKey?: string): JobqlClient {
  const created = createJobqlClient({ url, apiKey });
  clients.push(created);
  return created;
}

/**
 * A page that records every request it makes (and WebSocket it opens) and every CSP complaint; `feedOpen`
 * settles once the page has sent its jobsUpdated subscription, after which a new job cannot slip past it.
 */
async function openPage(url: string): Promise<{ page: Page; requested: string[]; complaints: string[]; feedOpen: Promise<void> }> {
  const requested: string[] = [];
  const complaints: string[] = [];
  const page = await browser.newPage();
  page.on('request', (request) => requested.push(request.url()));
  let opened: () => void = () => {};
  const feedOpen = new Promise<void>((resolve) => {
    opened = resolve;
  });
  page.on('websocket', (socket) => {
    requested.push(socket.url());
    socket.on('framesent', ({ payload }) => {
      if (String(payload).includes('jobsUpdated')) opened();
    });
  });
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) complaints.push(message.text());
  });
  await page.goto(url);
  return { page, requested, complaints, feedOpen };
}

function rowOf(page: Page, id: string) {
  return page.locator(`tr[data-id="${id}"]`);
}

describe('open mode', () => {
  browserTest('/ui is sent with a strict Content-Security-Policy, and its files as JavaScript and CSS', async () => {
    const page = await fetch(`${open.url}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain('unsafe-inline');
    expect(await page.text()).not.toMatch(/<script(?![^>]*\bsrc=)/);
    for (const [file, type] of [
      ['/ui/app.js', 'text/javascript'],
      ['/ui/style.css', 'text/css'],
      ['/ui/client/index.ts', 'text/javascript'],
      ['/ui/vendor/graphql-ws/client.js', 'text/javascript'],
    ]) {
      const response = await fetch(`${open.url}${file}`);
      expect([file, response.status, response.headers.get('content-type')?.split(';')[0]]).toEqual([file, 200, type]);
    }
    // The client's TypeScript arrives without its types, and its bare imports point at /ui/vendor/.
    const transports = await (await fetch(`${open.url}/ui/client/transports.ts`)).text();
    expect(transports).toContain("from '/ui/vendor/graphql-sse/client.mjs'");
    expect(transports).not.toMatch(/: Transport\b/);
    expect((await fetch(`${open.url}/ui/../package.json`)).status).toBe(404);
    expect((await fetch(`${open.url}/ui/client/..%2fconfig.ts`)).status).toBe(404);
  });

  browserTest(
    'a job created through the API appears in the list and reaches COMPLETED without a reload, loading nothing from another host',
    async () => {
      const { page, requested, complaints, feedOpen } = await openPage(`${open.url}/ui`);
      await page.getByRole('heading', { name: 'Jobs' }).waitFor(WAIT);
      await page.getByRole('list', { name: 'jobs by status' }).waitFor(WAIT);
      await feedOpen;
      const job = await client(open.url).createJob({ kind: 'sleep', input: { ms: 3000 } });
      const row = rowOf(page, job.id);
      await row.waitFor(WAIT);
      await row.getByText('COMPLETED').waitFor(WAIT);
      await expect(row.locator('progress').getAttribute('value')).resolves.toBe('1');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'list.png'), fullPage: true });
      // A phone-sized viewport: the same page, one column.
      await page.setViewportSize({ width: 390, height: 844 });
      await row.getByRole('link').waitFor(WAIT);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'list-phone.png'), fullPage: true });
      // The row's id is a real link: Enter on it opens the job's page.
      await row.getByRole('link').focus();
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: `Job ${job.id}` }).waitFor(WAIT);

      const server = new URL(open.url).host;
      expect(requested.filter((url) => new URL(url).host !== server)).toEqual([]);
      expect(requested).toContain(`${open.url}/graphql`);
      expect(complaints).toEqual([]);
      await page.close();
    },
    180_000,
  );

  browserTest(
    'the job page shows a running job live; cancel from it ends the job CANCELLED, and retry runs it again',
    async () => {
      const job = await client(open.url).createJob({ kind: 'sleep', input: { ms: 120_000 } });
      const { page, complaints } = await openPage(`${open.url}/ui#/jobs/${job.id}`);
      const details = page.getByRole('region', { name: `Job ${job.id}` });
      await details.getByText('RUNNING', { exact: true }).waitFor(WAIT);
      await page.getByRole('table', { name: 'revisions of the job' }).getByText('RUNNING').first().waitFor(WAIT);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'job.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'job-phone.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.getByRole('button', { name: 'Cancel' }).click();
      await details.getByText('CANCELLED', { exact: true }).waitFor(WAIT);
      expect((await client(open.url).getJob(job.id))?.status).toBe('CANCELLED');
      await expect(page.getByRole('button', { name: 'Cancel' }).isDisabled()).resolves.toBe(true);
      // Retry puts the cancelled job back in the queue, and the page follows it into its next attempt.
      await page.getByRole('button', { name: 'Retry' }).click();
      await details.getByText('RUNNING', { exact: true }).waitFor(WAIT);
      await details.getByText('attempt').locator('xpath=following-sibling::dd[1]').getByText('2 of 2').waitFor(WAIT);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await details.getByText('CANCELLED', { exact: true }).waitFor(WAIT);
      expect(complaints).toEqual([]);
      await page.close();
    },
    180_000,
  );

  browserTest(
    'a job created from the form opens from its link; a bad input shows the API error',
    async () => {
      const { page } = await openPage(`${open.url}/ui`);
      const form = page.getByRole('region', { name: 'Create a job' });
      await form.getByLabel('Kind').selectOption('echo', WAIT);
      await form.getByLabel('Input (JSON)').fill('{"from": "the form"}');
      await form.getByRole('button', { name: 'Create job' }).click();
      await form.getByRole('link').click(WAIT);
      await page.getByText('"the form"').first().waitFor(WAIT);
      await page.goto(`${open.url}/ui#/`);
      await form.getByLabel('Kind').selectOption('sleep', WAIT);
      // The kind's input schema is there to write the JSON against.
      await form.getByText('Input schema of this kind').click();
      await form.getByText('"ms"').waitFor(WAIT);
      // sleep's input is simple fields, so it gets a form; raw JSON is a toggle away.
      await form.getByLabel(/^ms/).waitFor(WAIT);
      await form.getByRole('button', { name: 'Raw JSON' }).click();
      await form.getByLabel('Input (JSON)').fill('{"ms": "soon"}');
      await form.getByRole('button', { name: 'Create job' }).click();
      await form.getByText(/BAD_USER_INPUT/).waitFor(WAIT);
      await page.close();
    },
    180_000,
  );
});

describe('with API_KEYS', () => {
  browserTest(
    'the dashboard asks for a key, and tenant B never sees tenant A’s job',
    async () => {
      const aJob = await client(keyed.url, TENANT_A).createJob({ kind: 'echo', input: { tenant: 'a' }, runAt: '2100-01-01T00:00:00Z' });
      const { page, requested, feedOpen } = await openPage(`${keyed.url}/ui`);
      await page.getByLabel('API key', { exact: true }).fill('not-a-key-0123456789abcdef', WAIT);
      await page.getByRole('button', { name: 'Use key' }).click();
      await page.getByText('That API key was refused.').waitFor(WAIT);

      await page.getByLabel('API key', { exact: true }).fill(TENANT_B);
      await page.getByRole('button', { name: 'Use key' }).click();
      await page.getByRole('heading', { name: 'Jobs' }).waitFor(WAIT);
      await page.getByRole('list', { name: 'jobs by status' }).waitFor(WAIT);
      await feedOpen;
      // A job of A's created while the page listens is not pushed to B either: B's own job, created after it,
      // comes through the same feed, so by the time B's row shows, A's would have too.
      const aLater = await client(keyed.url, TENANT_A).createJob({ kind: 'echo', input: { tenant: 'a' }, runAt: '2100-01-01T00:00:00Z' });
      const bJob = await client(keyed.url, TENANT_B).createJob({ kind: 'echo', input: { tenant: 'b' }, runAt: '2100-01-01T00:00:00Z' });
      await rowOf(page, bJob.id).waitFor(WAIT);
      expect(await rowOf(page, aLater.id).count()).toBe(0);
      await page.reload();
      await rowOf(page, bJob.id).waitFor(WAIT);
      expect(await rowOf(page, aJob.id).count()).toBe(0);
      expect(await rowOf(page, aLater.id).count()).toBe(0);
      await page.goto(`${keyed.url}/ui#/jobs/${aJob.id}`);
      await page.getByText(`No job with id ${aJob.id}.`).waitFor(WAIT);
      // The key is kept for the tab, and sent as a bearer token.
      expect(await page.evaluate(() => sessionStorage.getItem('jobql.apiKey'))).toBe(TENANT_B);
      const server = new URL(keyed.url).host;
      expect(requested.filter((url) => new URL(url).host !== server)).toEqual([]);
      await page.close();
    },
    180_000,
  );
});

test('DASHBOARD=false: /ui is not served', async () => {
  const { startTestApp } = await import('./helpers/app.ts');
  const off = await startTestApp(db.url, { runner: { concurrency: 0 }, http: { dashboard: false } });
  try {
    expect((await fetch(`${off.url}/ui`)).status).toBe(404);
  } finally {
    await off.stop();
  }
});
