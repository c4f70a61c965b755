import { describe, expect, test } from '@jest/globals';
import { getIntrospectionQuery, parse, validate } from 'graphql';
import { MAX_ALIASES, MAX_DEPTH, MAX_INTROSPECTION_LISTS, operationLimitsRule } from '../src/graphql/limits.ts';
import { buildSchema } from '../src/graphql/schema.ts';

const schema = buildSchema();

// The limits rule alone (no other validation rule), so that a document can be deeper than this schema allows
// and still be measured: the depth limit guards every shape, not only the ones today's types permit.
const errorsOf = (query: string, introspection = true) =>
  validate(schema, parse(query), [operationLimitsRule({ introspection })]).map((error) => ({
    message: error.message,
    code: error.extensions.code,
  }));

/** A selection `depth` levels deep: a > b > … (field names do not matter to this rule). */
const nested = (depth: number, leaf = 'id') => {
  let inner = leaf;
  for (let level = 1; level < depth; level++) inner = `f${level} { ${inner} }`;
  return inner;
};

describe('introspection passes the limits while introspection is enabled', () => {
  test.each([
    ['graphql getIntrospectionQuery()', getIntrospectionQuery()],
    [
      'with every option GraphiQL and codegen may turn on',
      getIntrospectionQuery({
        descriptions: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
        inputValueDeprecation: true,
        oneOf: true,
      }),
    ],
  ])('%s', (_, query) => {
    expect(errorsOf(query)).toEqual([]);
    // It is nested 15 deep: measured like any other selection it would be refused (the count stops past the limit).
    expect(errorsOf(query, false)).toEqual([{ message: expect.stringMatching(/nested 13 deep/), code: 'QUERY_TOO_COMPLEX' }]);
  });
});

describe('everything else is still measured', () => {
  test(`depth ${MAX_DEPTH} passes; ${MAX_DEPTH + 1} is QUERY_TOO_COMPLEX`, () => {
    expect(errorsOf(`{ ${nested(MAX_DEPTH)} }`)).toEqual([]);
    expect(errorsOf(`{ ${nested(MAX_DEPTH + 1)} }`)).toEqual([
      { message: `the operation is too large: nested ${MAX_DEPTH + 1} deep (at most ${MAX_DEPTH})`, code: 'QUERY_TOO_COMPLEX' },
    ]);
  });

  test('a deep selection beside a root __schema, or with __schema/__type inside it, is refused', () => {
    const deepJobs = `jobs { edges { node { ${nested(MAX_DEPTH - 2)} } } }`;
    expect(errorsOf(`{ __schema { queryType { name } } ${deepJobs} }`)).toEqual([
      { message: expect.stringMatching(/nested 13 deep/), code: 'QUERY_TOO_COMPLEX' },
    ]);
    expect(errorsOf(`{ jobs { ${nested(MAX_DEPTH - 1, '__schema { types { name } }')} } }`)).toEqual([
      { message: expect.stringMatching(/nested 13 deep/), code: 'QUERY_TOO_COMPLEX' },
    ]);
    expect(errorsOf(`{ __type(name: "Job") { name } ${nested(MAX_DEPTH + 1, '__type { name }')} }`)).toEqual([
      { message: expect.stringMatching(/nested 13 deep/), code: 'QUERY_TOO_COMPLEX' },
    ]);
  });

  test('through fragments too', () => {
    const query = `query { ...Root } fragment Root on Query { __schema { queryType { name } } ...Deep } fragment Deep on Query { ${nested(MAX_DEPTH + 1)} }`;
    expect(errorsOf(query)).toEqual([{ message: expect.stringMatching(/nested 13 deep/), code: 'QUERY_TOO_COMPLEX' }]);
  });

  test(`inside introspection, lists nest ${MAX_INTROSPECTION_LISTS} deep at most (they multiply the work)`, () => {
    expect(errorsOf('{ __schema { types { fields { type { fields { name } } } } } }')).toEqual([]);
    expect(errorsOf('{ __schema { types { fields { args { type { fields { name } } } } } } }')).toEqual([
      {
        message: `the operation is too large: introspection lists nested 4 deep (at most ${MAX_INTROSPECTION_LISTS})`,
        code: 'QUERY_TOO_COMPLEX',
      },
    ]);
    expect(errorsOf('{ __type(name: "Job") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }')).toEqual([
      expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }),
    ]);
  });

  test('aliases inside introspection are counted', () => {
    const aliased = (count: number) => `{ ${Array.from({ length: count }, (_, i) => `t${i}: __type(name: "Job") { name }`).join(' ')} }`;
    expect(errorsOf(aliased(MAX_ALIASES))).toEqual([]);
    expect(errorsOf(aliased(MAX_ALIASES + 1))).toEqual([expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' })]);
  });
});
