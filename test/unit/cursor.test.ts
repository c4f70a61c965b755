import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { decodeCursor, encodeCursor } from '../../src/jobs/cursor.ts';
import { JobqlError } from '../../src/jobs/errors.ts';

// The jobs list's keyset cursor: opaque to clients, exact to the microsecond, and refused as a client error when
// it was not made by this API.

const cursor = { createdAt: '2026-12-01T08:00:00.123456Z', id: '0b7c3a52-4a57-4a8e-9d0e-3f1a2b3c4d5e' };

describe('a cursor', () => {
  test('decodes to what was encoded, microseconds included', () => {
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
  });

  test('round-trips for any timestamp and id of the shape the database returns', () => {
    const micros = fc.integer({ min: 0, max: 999_999 }).map((n) => String(n).padStart(6, '0'));
    const when = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true });
    fc.assert(
      fc.property(when, micros, fc.uuid(), (date, us, id) => {
        const job = { createdAt: `${date.toISOString().slice(0, 19)}.${us}Z`, id };
        expect(decodeCursor(encodeCursor(job))).toEqual(job);
      }),
    );
  });

  test('is URL-safe base64 (no +, / or =)', () => {
    fc.assert(fc.property(fc.uuid(), (id) => expect(encodeCursor({ ...cursor, id })).toMatch(/^[A-Za-z0-9_-]+$/)));
  });
});

describe('anything else is BAD_USER_INPUT on the argument after', () => {
  const encoded = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
  test.each([
    ['an empty string', ''],
    ['not base64', '!!!'],
    ['milliseconds only', encoded(`2026-12-01T08:00:00.123Z|${cursor.id}`)],
    ['no id', encoded('2026-12-01T08:00:00.123456Z|')],
    ['an upper-case id', encoded(`${cursor.createdAt}|${cursor.id.toUpperCase()}`)],
    ['a date that does not exist', encoded(`2026-13-45T08:00:00.123456Z|${cursor.id}`)],
    ['extra text after the id', encoded(`${cursor.createdAt}|${cursor.id};DROP TABLE jobs`)],
    ['an offset instead of Z', encoded(`2026-12-01T08:00:00.123456+01:00|${cursor.id}`)],
  ])('%s', (_, text) => {
    let thrown: unknown;
    try {
      decodeCursor(text);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(JobqlError);
    expect(thrown).toMatchObject({
      code: 'BAD_USER_INPUT',
      message: 'after is not a cursor returned by this API',
      details: { argument: 'after' },
    });
  });
});
