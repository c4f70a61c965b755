import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@jest/globals';

// jobql/client runs in browsers too: nothing under src/client may import Node's modules or the server's code,
// or reach for Node-only globals. Its only packages are the two transports (and type-only imports).
const clientDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');
const ALLOWED_PACKAGES = new Set(['graphql-ws', 'graphql-sse']);

function sources(): Array<{ file: string; text: string }> {
  return readdirSync(clientDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => ({ file, text: readFileSync(path.join(clientDir, file), 'utf8') }));
}

test('src/client imports only its own files and the transports, and uses no Node-only global', () => {
  const files = sources();
  expect(files.map((source) => source.file)).toContain('index.ts');
  const offending: string[] = [];
  for (const { file, text } of files) {
    for (const [statement, typeOnly, specifier] of text.matchAll(/^import (type )?[^;]*?from '([^']+)'/gms)) {
      if (typeOnly || (specifier as string).startsWith('./')) continue;
      if (!ALLOWED_PACKAGES.has(specifier as string)) offending.push(`${file}: ${statement.split('\n')[0]}`);
    }
    for (const global of text.matchAll(/\b(process|Buffer|require|__dirname)\b[.(]/g)) offending.push(`${file}: uses ${global[1]}`);
  }
  expect(offending).toEqual([]);
});
