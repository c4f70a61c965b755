import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect } from '@jest/globals';
import type { BrowserContext, Page } from 'playwright-core';
import { z } from 'zod';
import { createJobqlClient, type JobqlClient } from '../src/client/index.ts';
import { defineKind } from '../src/index.ts';
import { useTestApp } from './helpers/app.ts';
import { browserTestFor, launchTestBrowser, type TestBrowser } from './helpers/browser.ts';
import { useTestDatabase } from './helpers/database.ts';

// The dashboard's create form for a kind with simple fields, in Debian's Chromium (as in dashboard.test.ts): a
// form built from the kind's input JSON Schema, filled by label; the job it creates has exactly the fields'
// input; the Raw JSON toggle keeps the values; the server's refusal shows its code. Waits are generous and no
// assertion is about time.
const browserTest = browserTestFor('dashboard-form.test.ts');
const WAIT = { timeout: 60_000 };
const SCREENSHOTS = path.resolve('test-results/screenshots');

const shout = defineKind({
  name: 'shout',
  input: z.strictObject({
    name: z.string().min(1),
    count: z.number().int().min(1).max(10),
    loud: z.boolean().optional(),
    mode: z.enum(['a', 'b']),
  }),
  handler: async (input) => input,
});

const db = useTestDatabase();
// No runner: the created jobs stay queued, and only their input is looked at.
const app = useTestApp(db, { runner: { concurrency: 0 } }, [shout]);
let testBrowser: TestBrowser | null = null;
let browser: BrowserContext;
let api: JobqlClient;

beforeAll(async () => {
  api = createJobqlClient({ url: app.url });
  testBrowser = await launchTestBrowser('jobql-dashboard-form-', { width: 1280, height: 800 });
  if (!testBrowser) return;
  browser = testBrowser.context;
});

afterAll(async () => {
  api?.dispose();
  await testBrowser?.close();
});

async function createForm(page: Page) {
  await page.goto(`${app.url}/ui`);
  const form = page.getByRole('region', { name: 'Create a job' });
  await form.getByLabel('Kind').selectOption('shout', WAIT);
  return form;
}

/** The id of the job the form says it created, and that job's input as the API has it. */
async function created(form: ReturnType<Page['getByRole']>) {
  const id = await form.getByRole('link').textContent(WAIT);
  const job = await api.getJob(String(id));
  return job?.input;
}

browserTest(
  'the form is built from the schema, fills by label, and creates the job with exactly its input',
  async () => {
    const page = await browser.newPage();
    const complaints: string[] = [];
    page.on('console', (message) => {
      if (/Content.Security.Policy|Refused to/i.test(message.text())) complaints.push(message.text());
    });
    const form = await createForm(page);
    const name = form.getByLabel(/^name/);
    const count = form.getByLabel(/^count/);
    // The schema's constraints, as the browser's own.
    await expect(name.getAttribute('minlength')).resolves.toBe('1');
    await expect(name.getAttribute('required')).resolves.toBe('');
    expect([await count.getAttribute('min'), await count.getAttribute('max'), await count.getAttribute('step')]).toEqual(['1', '10', '1']);
    await expect(count.getAttribute('type')).resolves.toBe('number');
    await expect(form.getByLabel(/^loud/).getAttribute('type')).resolves.toBe('checkbox');
    expect(await form.getByText('(required)').count()).toBe(3);

    await name.fill('Ada');
    await count.fill('3');
    await form.getByLabel(/^loud/).check();
    await form.getByLabel(/^mode/).selectOption({ label: 'b' });
    mkdirSync(SCREENSHOTS, { recursive: true });
    await form.screenshot({ path: path.join(SCREENSHOTS, 'create-form.png') });
    await form.getByRole('button', { name: 'Create job' }).click();
    expect(await created(form)).toEqual({ name: 'Ada', count: 3, loud: true, mode: 'b' });

    expect(complaints).toEqual([]);
    await page.close();
  },
  180_000,
);

browserTest(
  'an optional field left empty is omitted',
  async () => {
    const page = await browser.newPage();
    const form = await createForm(page);
    await form.getByLabel(/^name/).fill('Bo');
    await form.getByLabel(/^count/).fill('10');
    await form.getByRole('button', { name: 'Create job' }).click();
    expect(await created(form)).toEqual({ name: 'Bo', count: 10, mode: 'a' });
    await page.close();
  },
  180_000,
);

browserTest(
  'Raw JSON (from the keyboard) keeps the values; an input the schema refuses shows the API’s code; back to the form',
  async () => {
    const page = await browser.newPage();
    const form = await createForm(page);
    await form.getByLabel(/^name/).fill('Cy');
    await form.getByLabel(/^count/).fill('7');
    await form.getByLabel(/^mode/).selectOption({ label: 'b' });
    const toggle = form.getByRole('button', { name: 'Raw JSON' });
    await toggle.focus();
    await page.keyboard.press('Enter');
    await expect(toggle.getAttribute('aria-pressed')).resolves.toBe('true');
    const raw = form.getByLabel('Input (JSON)');
    expect(JSON.parse(await raw.inputValue(WAIT))).toEqual({ name: 'Cy', count: 7, mode: 'b' });
    await expect(form.getByLabel(/^count/).isVisible()).resolves.toBe(false);

    // The browser's checks are the form's; in raw JSON only the server's stand: count 11 is over the maximum.
    await raw.fill('{"name": "Cy", "count": 11, "mode": "b"}');
    await form.getByRole('button', { name: 'Create job' }).click();
    await form.getByText(/BAD_USER_INPUT/).waitFor(WAIT);
    await raw.fill('{"name": ');
    await form.getByRole('button', { name: 'Create job' }).click();
    await form.getByText(/The input is not JSON/).waitFor(WAIT);

    // Back to the form: JSON that fits fills the fields; the job is made from them.
    await raw.fill('{"name": "Di", "count": 2, "loud": false, "mode": "a"}');
    await toggle.click();
    await expect(toggle.getAttribute('aria-pressed')).resolves.toBe('false');
    await expect(form.getByLabel(/^count/).inputValue()).resolves.toBe('2');
    await form.getByRole('button', { name: 'Create job' }).click();
    // loud unticked and optional without a default: left out.
    expect(await created(form)).toEqual({ name: 'Di', count: 2, mode: 'a' });
    await page.close();
  },
  180_000,
);

browserTest(
  'which schemas get a form, and what each field becomes (zod’s own JSON Schema of each)',
  async () => {
    const schema = (type: z.ZodType) => z.toJSONSchema(type, { io: 'input' });
    const cases = {
      simple: schema(z.object({ s: z.email(), n: z.number().default(2), e: z.enum(['x']).optional(), d: z.iso.date() })),
      nested: schema(z.strictObject({ inner: z.strictObject({ a: z.string() }) })),
      array: schema(z.strictObject({ list: z.array(z.string()) })),
      union: schema(z.strictObject({ u: z.union([z.string(), z.number()]) })),
      nullable: schema(z.strictObject({ s: z.string().nullable() })),
      extraKeys: schema(z.looseObject({ a: z.string() })),
      record: schema(z.record(z.string(), z.number())),
      notAnObject: schema(z.string()),
      anyJson: schema(z.json()),
    };
    const page = await browser.newPage();
    await page.goto(`${app.url}/ui`);
    const representable = await page.evaluate(async (schemas) => {
      const { formFields } = await import('/ui/schema-form.js' as string);
      return Object.fromEntries(Object.entries(schemas).map(([name, s]) => [name, formFields(s) !== null]));
    }, cases);
    // What each field becomes: a pattern only where the browser's anchoring means the same; a literal is a choice.
    const controls = await page.evaluate(
      async (schema) => {
        const { inputEditor } = await import('/ui/schema-form.js' as string);
        const editor = inputEditor(schema).element as HTMLElement;
        return [...editor.querySelectorAll('input, select')].map((c) => [
          c.getAttribute('name'),
          c.tagName.toLowerCase(),
          c.getAttribute('type'),
          c.getAttribute('pattern'),
        ]);
      },
      schema(z.strictObject({ code: z.string().regex(/^[a-z]+$/), alt: z.string().regex(/^a|b$/), lit: z.literal('x'), d: z.iso.date() })),
    );
    expect(controls).toEqual([
      ['code', 'input', 'text', '^[a-z]+$'],
      ['alt', 'input', 'text', null],
      ['lit', 'select', null, null],
      ['d', 'input', 'date', null], // zod's date pattern alternates; a date input checks its own format
    ]);
    // JSON that a field cannot hold (not a date for a date input) keeps the editor on raw JSON, and says so.
    const backToForm = await page.evaluate(
      async (schema) => {
        const { inputEditor } = await import('/ui/schema-form.js' as string);
        const editor = inputEditor(schema).element as HTMLElement;
        const toggle = editor.querySelector('button') as HTMLButtonElement;
        toggle.click();
        (editor.querySelector('textarea') as HTMLTextAreaElement).value = '{"d": "soon"}';
        toggle.click();
        const stuck = [toggle.getAttribute('aria-pressed'), editor.querySelector('[role=alert]')?.textContent];
        (editor.querySelector('textarea') as HTMLTextAreaElement).value = '{"d": "2026-12-02"}';
        toggle.click();
        return [...stuck, toggle.getAttribute('aria-pressed'), (editor.querySelector('input') as HTMLInputElement).value];
      },
      schema(z.strictObject({ d: z.iso.date() })),
    );
    expect(backToForm).toEqual(['true', 'This JSON does not fit the form’s fields; it stays as raw JSON.', 'false', '2026-12-02']);
    expect(representable).toEqual({
      simple: true,
      nested: false,
      array: false,
      union: false,
      nullable: false,
      extraKeys: false,
      record: false,
      notAnObject: false,
      anyJson: false,
    });
    await page.close();
  },
  180_000,
);
