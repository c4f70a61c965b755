import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, expect, test } from '@jest/globals';
import { CreateJobDocument } from './generated/graphql.ts';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { waitForJob } from './helpers/jobs.ts';

// The README's shell examples, run as a newcomer would: copied from README.md itself, run by bash with the real
// curl against a live server, their output compared with the output the README shows under them.
//
// Which examples run: every ```sh block in the sections "## Use it" and "## Live status" (with their
// subsections), the sections a user copies requests from. Blocks elsewhere start or install things (npm ci,
// npm start, npm test) and are not run. Within a block, each command (with its `\` continuation lines) is run
// on its own, and the `# ` comment lines under it are the output the README promises.
//
// What is substituted: the README's port 4000 by the test server's, and its example job id by the id of a
// `sleep` job with `{ms: 2000}` created and finished by the test (the job the README's own example creates).
// How output is compared: every `"key":value` the README shows must be in the output with the same value,
// except the values that differ from run to run (ids, revisions, timestamps), which must only have the same
// shape; `…` in the README elides the rest. A plain `name: value` line (SSE) must be in the output too.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README_ID = '5ea2053f-53d6-41b4-9511-ee7f73042c37';
const RUN_SECTIONS = ['Use it', 'Live status'];
const VOLATILE_KEYS = new Set(['id', 'revision', 'createdAt', 'updatedAt', 'startedAt', 'finishedAt', 'runAt', 'cancelRequestedAt']);

type Example = { section: string; command: string; shown: string[] };

/** The ```sh blocks of the given level-2 sections, split into commands with the output shown under each. */
function shellExamples(markdown: string, sections: readonly string[]): Example[] {
  const examples: Example[] = [];
  let section = '';
  let open: { language: string; indent: string; lines: string[] } | null = null;
  for (const line of markdown.split('\n')) {
    if (open === null) {
      const heading = /^## (.+)$/.exec(line);
      if (heading) section = heading[1]?.trim() ?? '';
      const fence = /^(\s*)```(\w*)\s*$/.exec(line);
      if (fence) open = { language: fence[2] ?? '', indent: fence[1] ?? '', lines: [] };
    } else if (/^\s*```\s*$/.test(line)) {
      if (open.language === 'sh' && sections.includes(section)) examples.push(...splitCommands(section, open.lines));
      open = null;
    } else open.lines.push(line.startsWith(open.indent) ? line.slice(open.indent.length) : line);
  }
  return examples;
}

function splitCommands(section: string, lines: string[]): Example[] {
  const examples: Example[] = [];
  let current: Example | null = null;
  let continued = false;
  for (const line of lines) {
    if (continued && current) {
      current.command += `\n${line}`;
      continued = line.endsWith('\\');
    } else if (/^#( |$)/.test(line)) {
      current?.shown.push(line.replace(/^# ?/, ''));
    } else if (line.trim() !== '') {
      current = { section, command: line, shown: [] };
      examples.push(current);
      continued = line.endsWith('\\');
    }
  }
  return examples;
}

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const timestampShape = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** Every value each key has anywhere in the JSON values found in the output (a line, or an SSE data line). */
function valuesByKey(output: string): Map<string, unknown[]> {
  const found = new Map<string, unknown[]>();
  const visit = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        found.set(key, [...(found.get(key) ?? []), inner]);
        visit(inner);
      }
    }
  };
  for (const line of output.split('\n')) {
    const json = line.replace(/^data: /, '').trim();
    if (!json.startsWith('{')) continue;
    visit(JSON.parse(json));
  }
  return found;
}

/** What the README shows, checked against what the command printed; returns the differences. */
function compare(shown: string[], output: string): string[] {
  const problems: string[] = [];
  const actual = valuesByKey(output);
  const outputLines = output.split('\n').map((line) => line.trimEnd());
  for (const line of shown) {
    if (line.includes('{') || line.trimStart().startsWith('"')) {
      // "key":scalar pairs; a key followed by an object or array must only be present.
      for (const match of line.matchAll(/"(\w+)":("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|null|true|false|[{[])/g)) {
        const key = match[1] as string;
        const raw = match[2] as string;
        const values = actual.get(key);
        if (!values) {
          problems.push(`"${key}" is shown but not in the output`);
          continue;
        }
        if (raw === '{' || raw === '[') continue;
        const expected: unknown = JSON.parse(raw);
        const matches = (value: unknown) => {
          if (typeof expected === 'string' && (VOLATILE_KEYS.has(key) || expected.endsWith('…'))) {
            if (typeof value !== 'string') return false;
            if (uuidShape.test(expected) || expected.endsWith('-…')) return uuidShape.test(value);
            if (timestampShape.test(expected)) return timestampShape.test(value);
            return value.startsWith(expected.slice(0, -1));
          }
          if (VOLATILE_KEYS.has(key)) return typeof value === typeof expected;
          return JSON.stringify(value) === JSON.stringify(expected);
        };
        if (!values.some(matches)) problems.push(`"${key}":${raw} is shown; the output has ${JSON.stringify(values)}`);
      }
    } else if (line.trim() !== '') {
      // A plain line (an SSE field): the same line, or for a number (an event id) the same field name.
      const field = /^(\w+):\s*(\d+)$/.exec(line.trim());
      const present = field ? outputLines.some((out) => new RegExp(`^${field[1]}: \\d+$`).test(out)) : outputLines.includes(line.trimEnd());
      if (!present) problems.push(`the line ${JSON.stringify(line)} is shown but not in the output`);
    }
  }
  return problems;
}

const run = promisify(execFile);
const db = useTestDatabase();
const app = useTestApp(db, { runner: { concurrency: 2 } });
let jobId: string;

beforeAll(async () => {
  // The job the README's first example creates, finished, so that its shown output (COMPLETED, the result) holds.
  jobId = (await data(app.url, CreateJobDocument, { input: { kind: 'sleep', input: { ms: 2000 } } })).createJob.id;
  await waitForJob(app.url, jobId, 'COMPLETED');
}, 60_000);

const examples = shellExamples(readFileSync(path.join(root, 'README.md'), 'utf8'), RUN_SECTIONS);

test('the README has shell examples in the sections that are run, each with the output it shows', () => {
  expect(examples.map((example) => example.section)).toEqual(expect.arrayContaining(RUN_SECTIONS));
  // Every example that is run shows its output, so that there is something to compare.
  for (const example of examples) expect({ command: example.command, shown: example.shown.length > 0 }).toMatchObject({ shown: true });
});

test.each(examples.map((example) => [example.command.split('\n')[0] as string, example] as const))(
  'README example runs as written and prints what the README shows: %s',
  async (_name, example) => {
    const port = new URL(app.url).port;
    const command = example.command.replaceAll('127.0.0.1:4000', `127.0.0.1:${port}`).replaceAll(README_ID, jobId);
    expect(command).not.toContain(':4000');
    const { stdout } = await run('bash', ['-o', 'pipefail', '-c', command], { cwd: root, timeout: 30_000 });
    expect(compare(example.shown, stdout)).toEqual([]);
  },
  60_000,
);

test('the comparison fails when the output differs from what the README shows', () => {
  const shown = ['{"data":{"createJob":{"id":"5ea2053f-53d6-41b4-9511-ee7f73042c37","status":"QUEUED"}}}'];
  expect(compare(shown, '{"data":{"createJob":{"id":"2a93a6a5-262a-4ce5-91fd-0b526c9c34cb","status":"QUEUED"}}}')).toEqual([]);
  expect(compare(shown, '{"data":{"createJob":{"id":"2a93a6a5-262a-4ce5-91fd-0b526c9c34cb","status":"RUNNING"}}}')).toHaveLength(1);
  expect(compare(shown, '{"data":{"createJob":{"id":"not-a-uuid","status":"QUEUED"}}}')).toHaveLength(1);
  expect(compare(shown, 'curl: (3) nested brace in URL position 103')).toHaveLength(4);
  expect(compare(['event: complete', 'id: 23'], 'id: 7\nevent: complete\n')).toEqual([]);
  expect(compare(['event: complete'], 'event: next\n')).toHaveLength(1);
});
