import { readFileSync } from 'node:fs';
import { expect, test } from '@jest/globals';
import { buildSchema, type GraphQLObjectType } from 'graphql';
import { FailureCode, failureCodeMeanings } from '../src/jobs/failure-codes.ts';

// The codes jobql stores are one list (src/jobs/failure-codes.ts); the schema a client reads documents each.
test("the schema's JobError.code description names every failure code jobql stores, with its meaning", () => {
  const schema = buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));
  const description = (schema.getType('JobError') as GraphQLObjectType).getFields().code?.description ?? '';
  for (const code of Object.values(FailureCode)) {
    expect(description).toContain(`${code}: ${failureCodeMeanings[code]}.`);
  }
  expect(Object.keys(FailureCode)).toEqual(
    expect.arrayContaining(['INTERRUPTED', 'TIMEOUT', 'JOB_FAILED', 'INVALID_RESULT', 'BAD_INPUT', 'UNKNOWN_KIND']),
  );
});
