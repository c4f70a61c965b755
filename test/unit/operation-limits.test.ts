import { describe, expect, test } from '@jest/globals';
import { type DocumentNode, GraphQLError, getIntrospectionQuery, parse, type Source, validate } from 'graphql';
import {
  MAX_ALIASES,
  MAX_DEPTH,
  MAX_DOCUMENT_NESTING,
  MAX_FIELDS,
  MAX_INTROSPECTION_LISTS,
  operationLimits,
  operationLimitsRule,
} from '../../src/graphql/limits.ts';
import { buildSchema } from '../../src/graphql/schema.ts';

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

describe('aliases and fields, outside introspection', () => {
  const aliases = (count: number) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: job(id: "x") { id }`).join(' ')} }`;
  const fields = (count: number) => `{ jobs { edges { node { ${Array.from({ length: count - 3 }, () => 'id').join(' ')} } } } }`;

  test(`${MAX_ALIASES} aliases pass; ${MAX_ALIASES + 1} are QUERY_TOO_COMPLEX`, () => {
    expect(errorsOf(aliases(MAX_ALIASES))).toEqual([]);
    expect(errorsOf(aliases(MAX_ALIASES + 1))).toEqual([
      { message: `the operation is too large: ${MAX_ALIASES + 1} aliases (at most ${MAX_ALIASES})`, code: 'QUERY_TOO_COMPLEX' },
    ]);
  });

  test(`${MAX_FIELDS} fields pass; ${MAX_FIELDS + 1} are QUERY_TOO_COMPLEX`, () => {
    expect(errorsOf(fields(MAX_FIELDS))).toEqual([]);
    expect(errorsOf(fields(MAX_FIELDS + 1))).toEqual([
      { message: `the operation is too large: ${MAX_FIELDS + 1} fields (at most ${MAX_FIELDS})`, code: 'QUERY_TOO_COMPLEX' },
    ]);
  });

  test('a fragment spread twice counts twice (it runs twice)', () => {
    const half = Math.ceil((MAX_FIELDS + 1) / 2);
    const query = `{ ...F ...F } fragment F on Query { ${Array.from({ length: half }, (_, i) => `f${i}`).join(' ')} }`;
    expect(errorsOf(query)).toEqual([expect.objectContaining({ code: 'QUERY_TOO_COMPLEX', message: expect.stringMatching(/fields/) })]);
  });

  test('every limit that is exceeded is named in the one error', () => {
    expect(errorsOf(`{ ${nested(MAX_DEPTH + 1)} ${Array.from({ length: MAX_ALIASES + 1 }, (_, i) => `a${i}: id`).join(' ')} }`)).toEqual([
      {
        message: `the operation is too large: nested ${MAX_DEPTH + 1} deep (at most ${MAX_DEPTH}), ${MAX_ALIASES + 1} aliases (at most ${MAX_ALIASES})`,
        code: 'QUERY_TOO_COMPLEX',
      },
    ]);
  });

  test('each operation of a document is measured on its own', () => {
    const operation = (name: string) => `query ${name} ${aliases(MAX_ALIASES)}`;
    expect(errorsOf(`${operation('One')} ${operation('Two')}`)).toEqual([]);
  });

  test("a fragment cycle ends (reporting it is the validator's job)", () => {
    expect(errorsOf('{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }')).toEqual([]);
  });
});

describe(`brackets nest at most MAX_DOCUMENT_NESTING (${MAX_DOCUMENT_NESTING}) deep, checked before parsing`, () => {
  /** The plugin's parser, as Yoga would call it. */
  const limitedParse = (() => {
    let wrapped: ((source: string | Source) => DocumentNode) | undefined;
    const hooks = operationLimits({ introspection: true }) as {
      onParse: (payload: { parseFn: typeof parse; setParseFn: (fn: (source: string | Source) => DocumentNode) => void }) => void;
    };
    hooks.onParse({ parseFn: parse, setParseFn: (fn) => (wrapped = fn) });
    return (text: string) => (wrapped as (source: string) => DocumentNode)(text);
  })();
  const listLiteral = (depth: number) => `{ job(id: ${'['.repeat(depth)}1${']'.repeat(depth)}) { id } }`;
  const refusal = (text: string) => {
    try {
      limitedParse(text);
      return null;
    } catch (error) {
      return error instanceof GraphQLError ? { message: error.message, code: error.extensions.code } : error;
    }
  };

  test('at the limit the document is parsed; one level more is QUERY_TOO_COMPLEX without parsing', () => {
    // The selection set and the argument list add 2 to the literal's depth.
    expect(refusal(listLiteral(MAX_DOCUMENT_NESTING - 2))).toBeNull();
    expect(refusal(listLiteral(MAX_DOCUMENT_NESTING - 1))).toEqual({
      message: `the document nests brackets more than ${MAX_DOCUMENT_NESTING} deep`,
      code: 'QUERY_TOO_COMPLEX',
    });
  });

  test('a literal nested 100,000 deep is refused rather than overflowing the parser', () => {
    expect(refusal(listLiteral(100_000))).toMatchObject({ code: 'QUERY_TOO_COMPLEX' });
  });

  test('brackets inside strings and comments do not count', () => {
    const deep = '['.repeat(MAX_DOCUMENT_NESTING * 2);
    expect(refusal(`{ job(id: "${deep}") { id } } # ${deep}`)).toBeNull();
    expect(refusal(`{ job(id: """${deep}""") { id } }`)).toBeNull();
  });
});
