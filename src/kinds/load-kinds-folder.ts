import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DefinedKind, isKind } from './kind.ts';

/** A kinds folder that cannot be used; its message is one line that names the file. */
export class KindsFolderError extends Error {}

const MODULE_FILE = /\.(ts|mts|js|mjs)$/;
const SKIPPED_FILE = /\.d\.(ts|mts)$|\.test\.(ts|mts|js|mjs)$/;

/**
 * `jobql start --kinds DIR`: imports every module in `dir` (not its subfolders), in name order, and takes each
 * exported value made by defineKind. `.ts` files load through Node's type stripping, which works here because a
 * user's folder is not inside node_modules. A file that exports no kind, a file that cannot be imported, and two
 * kinds with one name each stop the start: a folder that half loads would run a different set of kinds than the
 * one the user wrote, and they would learn it only when a createJob fails.
 */
export async function loadKindsFolder(dir: string): Promise<DefinedKind[]> {
  const files = await moduleFiles(dir);
  const kinds: DefinedKind[] = [];
  const fileOf = new Map<string, string>();
  for (const file of files) {
    const shown = path.join(dir, file);
    const found = await kindsOf(path.resolve(dir, file), shown);
    for (const kind of found) {
      const earlier = fileOf.get(kind.name);
      if (earlier !== undefined) {
        const where = earlier === shown ? 'twice in this file' : `in ${earlier} too`;
        throw new KindsFolderError(`${shown}: kind ${JSON.stringify(kind.name)} is defined ${where}; kind names must be unique`);
      }
      fileOf.set(kind.name, shown);
      kinds.push(kind);
    }
  }
  return kinds;
}

async function moduleFiles(dir: string): Promise<string[]> {
  let entries: Array<{ name: string; isFile: () => boolean }>;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new KindsFolderError(`${dir}: cannot read the kinds folder (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const files = entries
    .filter((entry) => entry.isFile() && MODULE_FILE.test(entry.name) && !SKIPPED_FILE.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  if (files.length === 0) throw new KindsFolderError(`${dir}: the kinds folder holds no .ts, .js or .mjs module`);
  return files;
}

/** The distinct kinds a module exports (a kind exported both by name and as default counts once). */
async function kindsOf(file: string, shown: string): Promise<DefinedKind[]> {
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new KindsFolderError(`${shown}: cannot be imported: ${oneLine(error)}`);
  }
  const kinds = [...new Set(Object.values(exports).filter(isKind))];
  if (kinds.length === 0) throw new KindsFolderError(`${shown}: exports no kind (export a value made by defineKind)`);
  return kinds;
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return text.split('\n').find((line) => line.trim() !== '') ?? 'unknown error';
}
