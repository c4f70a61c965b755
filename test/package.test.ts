import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { attachDatabase, freshDatabaseUrl, type TestDatabase } from './helpers/database.ts';
import { packPackage, runCommand } from './helpers/package-build.ts';
import { repoRoot, startServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// What a user gets: the tarball of `npm pack`, installed into an empty project with `npm install`, its bin run
// through npx with a kinds folder holding a `.ts` kind, and its library imported by a script. Nothing of the
// repository's sources is used past the pack. The install uses npm's cache first (--prefer-offline), so a
// machine that installed the repository fetches little, and the project's node_modules is kept between runs.

let workDir: string;
let project: string;
const databases: TestDatabase[] = [];

const KIND = `
import { defineKind, JobFailure } from 'jobql';
import { z } from 'zod';

export const wordCount = defineKind({
  name: 'word-count',
  input: z.strictObject({ text: z.string().min(1) }),
  maxAttempts: 2,
  handler: async ({ text }, ctx) => {
    if (text === 'fail') throw new JobFailure('WORDLESS', 'asked to fail');
    ctx.progress(0.5);
    return { words: text.split(/\\s+/).filter(Boolean).length };
  },
});
`;

const SCRIPT = `
import { defineKind, startJobql } from 'jobql';
import { z } from 'zod';
import { wordCount } from './kinds/word-count.ts';

// Two kinds of the script's own: 'serial' (concurrency 1) never runs twice at once, while 'parallel' keeps
// running beside it; each parallel handler waits (at most 10 s) until all three run together.
const seen = { serial: 0, serialMax: 0, parallel: 0, parallelMax: 0 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const serial = defineKind({ name: 'serial', input: z.strictObject({}), concurrency: 1, handler: async () => {
  seen.serialMax = Math.max(seen.serialMax, ++seen.serial);
  await sleep(200);
  seen.serial--;
  return {};
} });
const parallel = defineKind({ name: 'parallel', input: z.strictObject({}), handler: async () => {
  seen.parallelMax = Math.max(seen.parallelMax, ++seen.parallel);
  for (let waited = 0; seen.parallelMax < 3 && waited < 10_000; waited += 50) await sleep(50);
  seen.parallel--;
  return {};
} });
const app = await startJobql({
  kinds: [wordCount, serial, parallel], databaseUrl: process.argv[2], port: 0, logLevel: 'silent', pollIntervalMs: 200, workerConcurrency: 4,
});
const untilFinished = async (created) => {
  let job = created;
  while (!['completed', 'failed', 'cancelled'].includes(job.status)) {
    await sleep(100);
    job = await app.getJob(created.id);
  }
  return job;
};
const job = await untilFinished(await app.createJob('word-count', { text: 'one two three four' }));
const batch = [];
for (let i = 0; i < 3; i++) batch.push(await app.createJob('serial', {}), await app.createJob('parallel', {}));
const statuses = [...new Set((await Promise.all(batch.map(untilFinished))).map((finished) => finished.status))];
const rejected = await app.createJob('echo', {}).then(() => null, (error) => error.code);
await app.stop();
const { createJobqlClient } = await import('jobql/client');
process.stdout.write(
  JSON.stringify({
    url: app.url, status: job.status, result: job.result, maxAttempts: job.maxAttempts, rejected, client: typeof createJobqlClient,
    statuses, serialMax: seen.serialMax, parallelMax: seen.parallelMax,
  }),
);
`;

// Type-checked with the repository's tsc as a user's editor would: the exports map's types, the .d.ts files'
// own imports, and types that are real (a wrong option and a wrong use of a handler's input are errors).
const TYPED = `
import { defineKind, type JobContext, type Jobql, type JobqlOptions, startJobql } from 'jobql';
import { z } from 'zod';

const typed = defineKind({
  name: 'typed',
  input: z.strictObject({ n: z.number() }),
  handler: async ({ n }, ctx: JobContext) => {
    ctx.progress(1);
    return { next: n + 1 };
  },
});
const options: JobqlOptions = { kinds: [typed], workerConcurrency: 2, http: false };
// @ts-expect-error a port is a number
export const wrongOption: JobqlOptions = { port: 'eighty' };
// @ts-expect-error the handler's input is typed by the kind's schema
defineKind({ name: 'wrong', input: z.strictObject({ n: z.number() }), handler: async ({ n }) => n.toUpperCase() });
export const start = (): Promise<Jobql> => startJobql(options);
`;

const TSCONFIG = {
  compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2024', strict: true, noEmit: true, types: [] },
  files: ['typed.ts', 'kinds/word-count.ts'],
};

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'jobql-package-'));
  const tarball = await packPackage(workDir);
  // The project lives on between runs so that its node_modules is reused: the install then replaces jobql and
  // whatever dependency changed, instead of extracting some 100 MB each run. Its own files are written afresh;
  // `npm install <tarball>` is what a user runs either way. It is outside the repository, so that nothing the
  // package forgot to declare can be found in the repository's node_modules instead.
  project = path.join(tmpdir(), `jobql-package-test-${createHash('sha256').update(repoRoot).digest('hex').slice(0, 8)}`);
  await rm(path.join(project, 'kinds'), { recursive: true, force: true });
  await mkdir(path.join(project, 'kinds'), { recursive: true });
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'uses-jobql', private: true, type: 'module' }));
  await runCommand('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: project,
    timeoutMs: 240_000,
  });
  await writeFile(path.join(project, 'kinds', 'word-count.ts'), KIND);
  await writeFile(path.join(project, 'script.ts'), SCRIPT);
  await writeFile(path.join(project, 'typed.ts'), TYPED);
  await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG));
}, 400_000);

afterAll(async () => {
  for (const db of databases) await db.drop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** A database that does not exist yet: the installed package creates it and applies its own migrations. */
function newDatabase(): string {
  const url = freshDatabaseUrl();
  databases.push(attachDatabase(url));
  return url;
}

test('npx jobql start --kinds ./kinds runs a .ts kind: createJob over HTTP completes with its result, GET /jobs/{id} shows it, /ui serves the dashboard', async () => {
  const server = await startServerProcess(
    { DATABASE_URL: newDatabase(), LOG_FORMAT: 'json' },
    { command: { file: 'npx', args: ['jobql', 'start', '--kinds', './kinds'], cwd: project }, asTerminal: true },
  );
  try {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation ($input: CreateJobInput!) { createJob(input: $input) { id status maxAttempts } }',
        variables: { input: { kind: 'word-count', input: { text: 'to be or not' } } },
      }),
    });
    const { data } = (await response.json()) as { data: { createJob: { id: string; status: string; maxAttempts: number } } };
    // The kind's policy is the job's default.
    expect(data.createJob).toMatchObject({ status: 'QUEUED', maxAttempts: 2 });
    const job = await waitFor(
      'the job to complete',
      async () => {
        const body = (await (await fetch(`${server.url}/jobs/${data.createJob.id}`)).json()) as { status: string };
        return body.status === 'QUEUED' || body.status === 'RUNNING' ? undefined : body;
      },
      30_000,
    );
    expect(job).toMatchObject({ id: data.createJob.id, kind: 'word-count', status: 'COMPLETED', result: { words: 4 }, progress: 1 });
    // The dashboard from the installed package: its page, the client built in dist/, and the client's own
    // dependencies found where npm installed them (beside jobql, not inside it).
    for (const [asset, contains] of [
      ['/ui', '<title>'],
      ['/ui/client/transports.js', "from '/ui/vendor/graphql-ws/client.js'"],
      ['/ui/vendor/graphql-ws/client.js', 'export'],
    ] as const) {
      const served = await fetch(`${server.url}${asset}`);
      expect({ asset, status: served.status }).toEqual({ asset, status: 200 });
      expect(await served.text()).toContain(contains);
    }
  } finally {
    // npx itself dies of the signal (it is the group's leader); jobql, beneath it, stops gracefully.
    await server.kill('SIGTERM');
    await waitFor('jobql to log that it stopped', async () => server.logs.find((line) => line.msg === 'stopped'));
  }
});

test("a script imports startJobql from the installed package and runs its own kinds (and only those: no demo kinds), a kind's concurrency 1 holding while another kind runs three at once; jobql/client imports too", async () => {
  const { stdout } = await runCommand('node', ['script.ts', newDatabase()], { cwd: project, timeoutMs: 60_000 });
  expect(JSON.parse(stdout)).toEqual({
    url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
    status: 'completed',
    result: { words: 4 },
    maxAttempts: 2,
    rejected: 'BAD_USER_INPUT',
    client: 'function',
    statuses: ['completed'],
    serialMax: 1,
    parallelMax: 3,
  });
});

test("the package carries its types: a kind and the options type-check in the user's project, and wrong uses do not", async () => {
  // Exits 0 only when the file has no errors other than the two it expects (an unused @ts-expect-error is one too).
  const tsc = path.join(repoRoot, 'node_modules', '.bin', 'tsc');
  await expect(runCommand(tsc, ['-p', '.'], { cwd: project, timeoutMs: 60_000 })).resolves.toMatchObject({ code: 0 });
});
