import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, rmdir, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './server-process.ts';

// What the package and example tests need of the repository's build: the repository's dist/ (npm run build,
// for the example that depends on the checkout by path) and the tarball (npm pack, built from a copy). jest runs
// two test files at once, so the repository's build holds a lock: two never write dist/ at the same moment.

export type CommandResult = { code: number | string; stdout: string; stderr: string };

/** Runs a command to its end (killed after `timeoutMs`); rejects when it does not exit 0, with its output. */
export function runCommand(
  file: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number },
): Promise<CommandResult> {
  const child = spawn(file, [...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timeoutMs = options.timeoutMs ?? 180_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? signal ?? 'unknown', stdout, stderr };
      if (code === 0) resolve(result);
      else reject(new Error(`${file} ${args.join(' ')} exited ${result.code} (limit ${timeoutMs} ms):\n${stdout}\n${stderr}`));
    });
  });
}

const LOCK = path.join(repoRoot, '.data', 'build.lock');
const STALE_LOCK_MS = 5 * 60_000;

async function withBuildLock<T>(run: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(LOCK), { recursive: true });
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch {
      // A lock left by a test run that was killed is taken over once it is old.
      const since = await stat(LOCK).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (since > STALE_LOCK_MS) await rmdir(LOCK).catch(() => {});
      await sleep(200);
    }
  }
  try {
    return await run();
  } finally {
    await rmdir(LOCK);
  }
}

/** `npm run build`: dist/ as the package ships it, for a project that depends on the repository by path. */
export function buildPackage(): Promise<void> {
  return withBuildLock(async () => {
    await runCommand('npm', ['run', 'build', '--silent'], { cwd: repoRoot });
  });
}

/**
 * `npm pack` (its prepack builds dist/): the tarball a user would install, written to `dir`; returns its path.
 * It packs a copy of what the package is made of (with the repository's node_modules linked in for the build),
 * so that the repository's own dist/, which examples run from, is not rebuilt under a running test.
 */
export async function packPackage(dir: string): Promise<string> {
  const source = path.join(dir, 'source');
  // The build runs codegen first (the client's typed operations), which reads the schema and every operation;
  // dashboard/ is shipped as it is (the page's files, served at /ui).
  const inputs = [
    'package.json',
    'README.md',
    'tsconfig.json',
    'tsconfig.build.json',
    'codegen.ts',
    'schema.graphql',
    'src',
    'migrations',
    'dashboard',
  ];
  for (const entry of [...inputs, 'test/operations']) {
    await cp(path.join(repoRoot, entry), path.join(source, entry), { recursive: true });
  }
  await symlink(path.join(repoRoot, 'node_modules'), path.join(source, 'node_modules'));
  await runCommand('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: source });
  const tarball = (await readdir(dir)).find((name) => name.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack wrote no tarball to ${dir}`);
  return path.join(dir, tarball);
}
