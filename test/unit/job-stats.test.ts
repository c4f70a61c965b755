import { describe, expect, test } from '@jest/globals';
import { summarizeCounts, withQueueDepth } from '../../src/jobs/job-stats.ts';

// Shaping a dashboard's numbers: the queue depth walked back from now through each minute's net changes, and
// the counts per (kind, status) summed per status.

const minute = (m: number) => `2026-12-01T10:0${m}:00.000000Z`;
const buckets = [0, 1, 2, 3].map((m) => ({ start: minute(m), completed: m, failed: 0, cancelled: 0 }));

describe('queue depth per minute', () => {
  test("is the QUEUED count now, less every net change after each minute's end", () => {
    // 4 queued now; +1 after now (not yet in the last bucket), +2 in minute 3, -1 in minute 2, +1 in minute 1.
    const changes = [
      { minute: null, delta: 1 },
      { minute: minute(3), delta: 2 },
      { minute: minute(2), delta: -1 },
      { minute: minute(1), delta: 1 },
    ];
    const depths = withQueueDepth(buckets, { queuedNow: 4, completeSince: minute(0), changes }).map((b) => b.queueDepth);
    // End of minute 3 (now): 4 - 1 = 3; of minute 2: 3 - 2 = 1; of minute 1: 1 + 1 = 2; of minute 0: 2 - 1 = 1.
    expect(depths).toEqual([1, 2, 1, 3]);
  });

  test('is null for the minutes that end before the log is complete, and known for the current one', () => {
    const read = { queuedNow: 5, completeSince: '2026-12-01T10:02:30.000000Z', changes: [] };
    expect(withQueueDepth(buckets, read).map((b) => b.queueDepth)).toEqual([null, null, 5, 5]);
    expect(withQueueDepth(buckets, { ...read, completeSince: null }).map((b) => b.queueDepth)).toEqual([null, null, null, 5]);
  });

  test('keeps the finished counts of each minute', () => {
    expect(withQueueDepth(buckets, { queuedNow: 0, completeSince: minute(0), changes: [] }).map((b) => b.completed)).toEqual([0, 1, 2, 3]);
  });
});

test('counts per status add up the kinds, every status present; ages are the oldest of any kind', () => {
  const row = { scheduled: 0, oldestAgeSeconds: null, oldestDueAgeSeconds: null };
  const stats = summarizeCounts(
    {
      at: minute(1),
      finishedSince: minute(0),
      counts: [
        { ...row, kind: 'echo', status: 'queued', count: 2, scheduled: 1, oldestAgeSeconds: 30, oldestDueAgeSeconds: 5 },
        { ...row, kind: 'sleep', status: 'queued', count: 3, oldestAgeSeconds: 90, oldestDueAgeSeconds: 2 },
        { ...row, kind: 'echo', status: 'completed', count: 7 },
      ],
    },
    1,
  );
  expect(stats.byStatus).toEqual([
    { status: 'queued', count: 5 },
    { status: 'running', count: 0 },
    { status: 'completed', count: 7 },
    { status: 'failed', count: 0 },
    { status: 'cancelled', count: 0 },
  ]);
  expect(stats).toMatchObject({ scheduled: 1, oldestQueuedAgeSeconds: 90, oldestDueQueuedAgeSeconds: 5 });
});
