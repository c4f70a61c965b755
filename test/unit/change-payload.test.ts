import { describe, expect, test } from '@jest/globals';
import { JOBS_CHANGED_CHANNEL, LEGACY_JOB_CHANGED_CHANNEL, parseJobChanges } from '../../src/notify/change-payload.ts';

// The two payloads the listener reads: migration 009's per-statement array and the per-row object before it.

const ID = '5ea2053f-53d6-41b4-9511-ee7f73042c37';
const OTHER = '00000000-0000-4000-8000-000000000001';

describe('parseJobChanges', () => {
  test('reads every entry of a per-statement payload, in order', () => {
    const payload = JSON.stringify([
      [ID, 2, 'running', 'echo', 'default', 0],
      [OTHER, 5, 'running', 'sleep', 'acme', 1],
    ]);
    expect(parseJobChanges(JOBS_CHANGED_CHANNEL, payload)).toEqual([
      { id: ID, revision: 2, status: 'running', kind: 'echo', tenant: 'default', cancel: false },
      { id: OTHER, revision: 5, status: 'running', kind: 'sleep', tenant: 'acme', cancel: true },
    ]);
  });

  test('reads the per-row object of older versions', () => {
    const payload = JSON.stringify({ id: ID, revision: 3, status: 'queued', kind: 'echo', tenant: 'default', cancel: false });
    expect(parseJobChanges(LEGACY_JOB_CHANGED_CHANNEL, payload)).toEqual([
      { id: ID, revision: 3, status: 'queued', kind: 'echo', tenant: 'default', cancel: false },
    ]);
  });

  test("skips what the triggers do not send: bad entries, bad JSON, other channels, the other channel's shape", () => {
    const payload = JSON.stringify([[ID, '2', 'running', 'echo', 'default', 0], [OTHER, 1, 'queued', 'echo', 'default', 0], 'x', null]);
    expect(parseJobChanges(JOBS_CHANGED_CHANNEL, payload).map((change) => change.id)).toEqual([OTHER]);
    expect(parseJobChanges(JOBS_CHANGED_CHANNEL, '[[')).toEqual([]);
    expect(parseJobChanges(JOBS_CHANGED_CHANNEL, '')).toEqual([]);
    expect(parseJobChanges(JOBS_CHANGED_CHANNEL, undefined)).toEqual([]);
    expect(parseJobChanges('another_channel', JSON.stringify([[ID, 1, 'queued', 'echo', 'default', 0]]))).toEqual([]);
    expect(
      parseJobChanges(JOBS_CHANGED_CHANNEL, JSON.stringify({ id: ID, revision: 1, status: 'queued', kind: 'echo', tenant: 'default' })),
    ).toEqual([]);
    expect(parseJobChanges(LEGACY_JOB_CHANGED_CHANNEL, JSON.stringify([[ID, 1, 'queued', 'echo', 'default', 0]]))).toEqual([]);
  });
});
