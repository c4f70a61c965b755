import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { settingList } from '../src/config.ts';
import { attachDatabase, freshDatabaseUrl, type TestDatabase, useTestDatabase } from './helpers/database.ts';
import { runCommand } from './helpers/package-build.ts';
import { repoRoot, runServerToExit, startServerProcess } from './helpers/server-process.ts';

// `jobql start --kinds DIR` from the sources (the same CLI the package's bin runs): a folder that cannot be used
// stops startup with one line naming the file, before anything starts; a good one runs its kinds.

const cli = path.join(repoRoot, 'src/cli.ts');
// Kinds in a temporary folder import jobql's own sources by URL (a user's folder imports the package).
const jobql = pathToFileURL(path.join(repoRoot, 'src/index.ts')).href;
const zod = pathToFileURL(path.join(repoRoot, 'node_modules/zod/index.js')).href;

const kindFile = (name: string) => `
import { defineKind } from '${jobql}';
import { z } from '${zod}';
export const kind = defineKind({ name: '${name}', input: z.object({}), handler: async () => ({ ran: '${name}' }) });
`;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'jobql-kinds-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A kinds folder with these files (name → source). */
async function folder(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir);
  for (const [file, source] of Object.entries(files)) await writeFile(path.join(dir, file), source);
  return dir;
}

// A database that refuses connections: a start that got past the kinds folder by mistake fails fast.
const UNREACHABLE = 'postgres://root@127.0.0.1:1/jobql';

async function startWithKinds(dir: string) {
  return runServerToExit({ DATABASE_URL: UNREACHABLE, DATABASE_STARTUP_TIMEOUT_MS: '1000' }, 60_000, undefined, {
    command: { file: process.execPath, args: [cli, 'start', '--kinds', dir] },
  });
}

describe('a kinds folder that cannot be used stops startup with one line naming the file, exit code 1', () => {
  test.each([
    ['a file that exports no kind', { 'a.ts': kindFile('a'), 'helper.ts': 'export const notAKind = 1;\n' }, 'helper.ts', /exports no kind/],
    [
      'a broken import',
      { 'a.ts': kindFile('a'), 'broken.ts': "import { nothing } from './missing.ts';\n" },
      'broken.ts',
      /cannot be imported/,
    ],
    ['a syntax error', { 'bad.js': 'export const = ;\n' }, 'bad.js', /cannot be imported: SyntaxError/],
    [
      'two kinds with one name in two files',
      { 'one.ts': kindFile('same'), 'two.mjs': kindFile('same') },
      'two.mjs',
      /"same" is defined in .*one\.ts too/,
    ],
  ])('%s', async (name, files, culprit, reason) => {
    const dir = await folder(name.replaceAll(' ', '-'), files);
    const { exit, stderr } = await startWithKinds(dir);
    expect(exit).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^jobql: could not load kinds: ${path.join(dir, culprit).replaceAll('.', '\\.')}: `));
    expect(lines[0]).toMatch(reason);
  });

  test('a folder that does not exist, and a start with no kinds at all', async () => {
    const missing = await startWithKinds(path.join(root, 'nowhere'));
    expect([missing.exit, missing.stderr]).toEqual([
      1,
      expect.stringMatching(/^jobql: could not load kinds: .*nowhere: cannot read the kinds folder \(ENOENT\)\n$/),
    ]);
    const none = await runServerToExit({ DATABASE_URL: UNREACHABLE }, 60_000, undefined, {
      command: { file: process.execPath, args: [cli, 'start'] },
    });
    expect([none.exit, none.stderr]).toEqual([1, expect.stringMatching(/^jobql: no kinds to run: pass --kinds DIR/)]);
  });
});

describe('a kinds folder that loads', () => {
  const db = useTestDatabase();

  test('its kinds, and only those, are what the server knows (.ts, .js and .mjs alike)', async () => {
    const dir = await folder('good', { 'b.ts': kindFile('from-ts'), 'c.mjs': kindFile('from-mjs'), 'notes.md': '# not a module\n' });
    const server = await startServerProcess(
      { DATABASE_URL: db.url, LOG_FORMAT: 'json' },
      { command: { file: process.execPath, args: [cli, 'start', '--kinds', dir] } },
    );
    try {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ kinds { name } }' }),
      });
      expect(await response.json()).toEqual({ data: { kinds: [{ name: 'from-mjs' }, { name: 'from-ts' }] } });
    } finally {
      expect(await server.kill('SIGTERM')).toBe(0);
    }
  });
});

describe('jobql --help', () => {
  test('lists every setting, as the environment variable and as the option, as the README table does', async () => {
    const { stdout } = await runCommand(process.execPath, [cli, '--help'], { cwd: repoRoot });
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    for (const { variable, optionName, option } of settingList()) {
      if (option === 'none') continue;
      expect(stdout).toMatch(new RegExp(`^  ${variable} .*\\(option: ${optionName}\\)$`, 'm'));
      expect(table).toContain(`\`${variable}\``);
      expect(table).toContain(`\`${optionName}\``);
    }
    expect(stdout).toMatch(/start .*\n.*--kinds DIR/);
  });
});

describe('jobql migrate', () => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  test('creates the database, applies the migrations and exits 0; a second run finds nothing to do', async () => {
    const url = freshDatabaseUrl();
    databases.push(attachDatabase(url));
    const first = await runCommand(process.execPath, [cli, 'migrate'], { cwd: repoRoot, env: { DATABASE_URL: url } });
    expect(first.stdout).toMatch(/: applied create-migrations-table, create-jobs, /);
    const second = await runCommand(process.execPath, [cli, 'migrate'], { cwd: repoRoot, env: { DATABASE_URL: url } });
    expect(second.stdout).toMatch(/: up to date\n$/);
  });
});
