import { readFileSync } from 'node:fs';
import { expect, test } from '@jest/globals';
import { printSortedSchema } from '../../src/graphql/schema.ts';

test('schema.graphql is the schema the code builds (run `npm run schema` after changing a type)', () => {
  const committed = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
  expect(committed).toBe(printSortedSchema());
});
