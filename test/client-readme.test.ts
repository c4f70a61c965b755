import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { repoRoot } from './helpers/server-process.ts';

// The README's "Client" example, run as a user would run it (`node watch.ts`) against a live server: the first
// ```ts block of the section, with 'jobql/client' pointed at src/client/index.ts, and its output compared with
// the block shown under it: revisions one by one up to COMPLETED with progress 1, then the error's code.
const db = useTestDatabase();
const app = useTestApp(db);

async function clientExample(): Promise<{ code: string; shown: string[] }> {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith('Client\n'));
  const blocks = [...(section ?? '').matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)];
  const code = blocks.find((block) => block[1] === 'ts')?.[2];
  const shown = blocks.find((block) => block[1] === '')?.[2];
  if (!code || !shown) throw new Error('README.md has no ts example with its output in "## Client"');
  return { code, shown: shown.trim().split('\n') };
}

const stateLine = /^(\d+) (QUEUED|RUNNING|COMPLETED) ([\d.]+)$/;

test("the README's client example runs and prints what the README shows", async () => {
  const { code, shown } = await clientExample();
  const dir = await mkdtemp(path.join(tmpdir(), 'jobql-client-example-'));
  try {
    const script = path.join(dir, 'watch.ts');
    await writeFile(script, code.replace("'jobql/client'", `'${pathToFileURL(path.join(repoRoot, 'src/client/index.ts')).href}'`));
    const { stdout } = await promisify(execFile)(process.execPath, [script], {
      env: { PATH: process.env.PATH ?? '', JOBQL_URL: app.url },
      timeout: 30_000,
    });
    const lines = stdout.trim().split('\n');
    const states = lines.slice(0, -1).map((line) => stateLine.exec(line));
    expect(states.every((match) => match !== null)).toBe(true);
    const revisions = states.map((match) => Number(match?.[1]));
    expect(revisions).toEqual(Array.from({ length: revisions.length }, (_, i) => (revisions[0] as number) + i));
    expect(lines.at(-2)).toMatch(/^\d+ COMPLETED 1$/);
    expect(lines.at(-1)).toBe(shown.at(-1));
    // The README shows the same shapes: state lines (with … for the middle), then that same last line.
    expect(shown.slice(0, -1).every((line) => line === '…' || stateLine.test(line))).toBe(true);
    expect(shown.at(-2)).toMatch(/^\d+ COMPLETED 1$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
