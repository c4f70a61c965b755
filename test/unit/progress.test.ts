import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { setLogLevel } from '../../src/logger.ts';
import { createProgressWriter } from '../../src/runner/progress.ts';

// Progress coalescing: a handler may call progress() in a tight loop; the row is written about ten times a second
// at most, the last value always, one write at a time. Fake timers: no waiting, and no database.

beforeEach(() => {
  setLogLevel('silent');
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

/** A writer whose writes are recorded; each write takes `writeMs` (of fake time) to finish. */
function recording(writeMs = 0) {
  const written: number[] = [];
  let inFlight = 0;
  let overlapped = false;
  const writer = createProgressWriter(async (fraction) => {
    inFlight++;
    if (inFlight > 1) overlapped = true;
    if (writeMs > 0) await new Promise((resolve) => setTimeout(resolve, writeMs));
    written.push(fraction);
    inFlight--;
  });
  return { writer, written, overlapped: () => overlapped };
}

describe('coalescing', () => {
  test('the first report is written at once; a burst within 100 ms is one more write, of its last value', async () => {
    const { writer, written } = recording();
    writer.report(0.1);
    await jest.advanceTimersByTimeAsync(0);
    expect(written).toEqual([0.1]);
    for (let i = 2; i <= 9; i++) writer.report(i / 10);
    await jest.advanceTimersByTimeAsync(99);
    expect(written).toEqual([0.1]);
    await jest.advanceTimersByTimeAsync(1);
    expect(written).toEqual([0.1, 0.9]);
  });

  test('a tight loop of 10,000 reports over one second writes about ten times, ending with the last value', async () => {
    const { writer, written } = recording();
    for (let i = 1; i <= 10_000; i++) {
      writer.report(i / 10_000);
      if (i % 100 === 0) await jest.advanceTimersByTimeAsync(10);
    }
    await writer.close();
    expect(written.length).toBeGreaterThanOrEqual(9);
    expect(written.length).toBeLessThanOrEqual(12);
    expect(written.at(-1)).toBe(1);
    expect([...written].sort((a, b) => a - b)).toEqual(written);
  });

  test('reports spaced further apart than 100 ms are each written', async () => {
    const { writer, written } = recording();
    for (const fraction of [0.25, 0.5, 0.75]) {
      writer.report(fraction);
      await jest.advanceTimersByTimeAsync(150);
    }
    expect(written).toEqual([0.25, 0.5, 0.75]);
  });
});

describe('values', () => {
  test('are clamped to 0..1; NaN, infinities and non-numbers are ignored', async () => {
    const { writer, written } = recording();
    writer.report(-0.5);
    await jest.advanceTimersByTimeAsync(150);
    writer.report(7);
    await jest.advanceTimersByTimeAsync(150);
    writer.report(Number.NaN);
    writer.report(Number.POSITIVE_INFINITY);
    writer.report('0.5' as unknown as number);
    await writer.close();
    expect(written).toEqual([0, 1]);
  });
});

describe('order and close', () => {
  test('writes go one at a time, in order, even when a write is slower than the interval', async () => {
    const { writer, written, overlapped } = recording(250);
    for (let i = 1; i <= 5; i++) {
      writer.report(i / 5);
      await jest.advanceTimersByTimeAsync(120);
    }
    const closed = writer.close();
    await jest.advanceTimersByTimeAsync(5_000);
    await closed;
    expect(overlapped()).toBe(false);
    expect(written).toEqual([0.2, 0.4, 0.6, 0.8, 1]);
  });

  test('close writes the pending value at once and waits for it; reports after close are dropped', async () => {
    const { writer, written } = recording();
    writer.report(0.1);
    writer.report(0.6);
    await writer.close();
    expect(written).toEqual([0.1, 0.6]);
    writer.report(0.9);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(written).toEqual([0.1, 0.6]);
  });

  test('a failed write is logged and does not stop the later ones', async () => {
    const written: number[] = [];
    const writer = createProgressWriter(async (fraction) => {
      if (fraction === 0.5) throw new Error('connection lost');
      written.push(fraction);
    });
    writer.report(0.5);
    await jest.advanceTimersByTimeAsync(150);
    writer.report(0.8);
    await writer.close();
    expect(written).toEqual([0.8]);
  });
});
