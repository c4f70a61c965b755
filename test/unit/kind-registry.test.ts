import { expect, test } from '@jest/globals';
import { z } from 'zod';
import { defineKind, isKind } from '../../src/kinds/kind.ts';
import { createKindRegistry, KindDefinitionError } from '../../src/kinds/registry.ts';

const kind = (name: string, extra: object = {}) => defineKind({ name, input: z.object({}), handler: async () => null, ...extra });

test('two kinds with one name: the error names both definitions (file and line of each defineKind)', () => {
  const first = defineKind({ name: 'resize', input: z.object({}), handler: async () => null });
  const second = defineKind({ name: 'resize', input: z.object({}), handler: async () => 1 });
  expect(() => createKindRegistry([first, second])).toThrow(KindDefinitionError);
  try {
    createKindRegistry([first, second]);
  } catch (error) {
    const message = (error as Error).message;
    expect(message).toMatch(/^two kinds are named "resize": .*kind-registry\.test\.ts:\d+:\d+ and .*kind-registry\.test\.ts:\d+:\d+$/);
    expect(first.definedAt).not.toBe(second.definedAt);
  }
});

test('kind names must be 1 to 100 characters; policies must be in range', () => {
  expect(() => createKindRegistry([kind('')])).toThrow('must be 1 to 100 characters');
  expect(() => createKindRegistry([kind('  ')])).toThrow('must be 1 to 100 characters');
  expect(() => createKindRegistry([kind('x'.repeat(101))])).toThrow('must be 1 to 100 characters');
  expect(createKindRegistry([kind('x'.repeat(100))]).names()).toEqual(['x'.repeat(100)]);
  expect(() => createKindRegistry([kind('a', { maxAttempts: 0 })])).toThrow('kind a: maxAttempts');
  expect(() => createKindRegistry([kind('a', { concurrency: 1.5 })])).toThrow('kind a: concurrency');
});

test('the registry lists kinds by name with their policies; defineKind brands what it makes', () => {
  const registry = createKindRegistry([kind('b', { maxAttempts: 3, concurrency: 2 }), kind('a', { timeoutMs: 500 })]);
  expect(registry.names()).toEqual(['a', 'b']);
  expect(registry.list().map(({ inputSchema, ...rest }) => rest)).toEqual([
    { name: 'a', timeoutMs: 500, maxAttempts: 1, retryBackoffMs: null, concurrency: null, schedules: [] },
    { name: 'b', timeoutMs: null, maxAttempts: 3, retryBackoffMs: null, concurrency: 2, schedules: [] },
  ]);
  expect(isKind(kind('c'))).toBe(true);
  expect(isKind({ name: 'c', input: z.object({}), handler: async () => null })).toBe(false);
});
