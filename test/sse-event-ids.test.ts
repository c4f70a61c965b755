import { expect, test } from '@jest/globals';
import { revisionOf } from '../src/http/sse.ts';

// The SSE writer names each event after the revision in the event's own payload (no side channel from the
// resolvers): what it reads, whatever the root field is called, and when there is none to read.

test('an event is named after the revision of the job it carries, under any root field name or alias', () => {
  expect(revisionOf({ data: { jobUpdated: { status: 'RUNNING', revision: 7 } } })).toBe(7);
  expect(revisionOf({ data: { mine: { revision: 12 } } })).toBe(12);
});

test('an event without a revision has no id: none selected, an error, or no data', () => {
  expect(revisionOf({ data: { jobUpdated: { status: 'RUNNING' } } })).toBeNull();
  expect(revisionOf({ data: { jobUpdated: { revision: '7' } } })).toBeNull();
  expect(revisionOf({ data: null, errors: [] })).toBeNull();
  expect(revisionOf({})).toBeNull();
});
