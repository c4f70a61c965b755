import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { findUnstorableString, MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/jobs/json-check.ts';

// The checks on JSON a job stores (inputs and results): how deep it nests, and whether jsonb can hold its strings.

const nestedArray = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);
const nestedObject = (depth: number): unknown => JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

describe('nestsDeeperThan', () => {
  test('a scalar is depth 0; [] and {} are 1', () => {
    for (const scalar of [null, 1, 'text', true]) expect(nestsDeeperThan(scalar, 0)).toBe(false);
    expect(nestsDeeperThan([], 0)).toBe(true);
    expect(nestsDeeperThan({}, 0)).toBe(true);
    expect(nestsDeeperThan([], 1)).toBe(false);
  });

  test(`at MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) is accepted, one more is not, for arrays and objects alike`, () => {
    for (const nested of [nestedArray, nestedObject]) {
      expect(nestsDeeperThan(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).toBe(false);
      expect(nestsDeeperThan(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe(true);
    }
  });

  test('measures the deepest branch, not the first', () => {
    expect(nestsDeeperThan({ shallow: 1, list: [1, 2, { deep: [[[]]] }] }, 5)).toBe(true);
    expect(nestsDeeperThan({ shallow: 1, list: [1, 2, { deep: [[[]]] }] }, 6)).toBe(false);
  });

  test('a nesting far deeper than the stack allows is measured without recursion', () => {
    expect(nestsDeeperThan(nestedArray(100_000), MAX_JSON_DEPTH)).toBe(true);
  });

  test('a cyclic value ends (it is deeper than any limit)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(nestsDeeperThan(cyclic, MAX_JSON_DEPTH)).toBe(true);
  });

  test('agrees with a recursive count on any JSON value', () => {
    const depthOf = (value: unknown): number =>
      value === null || typeof value !== 'object' ? 0 : 1 + Math.max(0, ...Object.values(value as object).map(depthOf));
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, limit) => {
        expect(nestsDeeperThan(value, limit)).toBe(depthOf(value) > limit);
      }),
    );
  });
});

describe('findUnstorableString', () => {
  test('storable values give null', () => {
    expect(findUnstorableString({ text: 'héllo 👋', list: [1, 'two', null], nested: { ok: true } })).toBeNull();
  });

  test.each([
    ['a NUL in a value', { a: ['x', 'bad\u0000'] }, ['a', 1]],
    ['a lone high surrogate', { a: { b: 'x\uD800' } }, ['a', 'b']],
    ['a lone low surrogate', ['\uDC00'], [0]],
    ['a NUL in a key', { ok: 1, 'k\u0000': 2 }, ['k\u0000']],
    ['a bad key deep down', { a: [{ '\uD83D': 1 }] }, ['a', 0, '\uD83D']],
    ['the string itself', 'bad\u0000', []],
  ])('%s: its path', (_, value, path) => {
    expect(findUnstorableString(value)).toEqual(path);
  });

  test('the first of several, in document order', () => {
    expect(findUnstorableString({ a: 'ok', b: 'x\u0000', c: '\uD800' })).toEqual(['b']);
  });

  test('any well-formed string without NUL is storable', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        if (text.isWellFormed() && !text.includes('\\u0000') && !text.includes('\u0000')) expect(findUnstorableString(value)).toBeNull();
      }),
    );
  });
});
