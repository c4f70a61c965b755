import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createDatabasePool, type DatabasePool } from '../src/db/pool.ts';
import { createCompletionBatcher } from '../src/runner/completion-batch.ts';
import { useTestApp } from './helpers/app.ts';
import { insertJob, insertJobs, useTestDatabase } from './helpers/database.ts';
import { gatedKind } from './helpers/gated-kind.ts';
import { scrape } from './helpers/metrics.ts';
import { waitFor } from './helpers/wait.ts';

// Group commit of successful completions (src/runner/completion-batch.ts): jobs that finish while a completion
// statement is in flight are written together in the next one, each still guarded by its own claim.

type Row = { id: string; status: string; result: unknown; attempt: number; revision: number };

describe('the completion batcher against the table', () => {
  const db = useTestDatabase();
  let pool: DatabasePool;
  beforeAll(async () => {
    pool = await createDatabasePool(db.url, 2);
  });
  afterAll(async () => {
    await pool.end();
  });

  test('completions queued behind one in flight share one statement; a lost claim among them is left alone', async () => {
    const running = { status: 'running' as const, attempt: 1, worker_id: 7, started_at: new Date() };
    const [first, lost, second, third] = await insertJobs(db, 4, running);
    if (!first || !lost || !second || !third) throw new Error('four jobs expected');
    // The lost claim: recovered and claimed again (attempt 2) while attempt 1's handler was still running.
    await db.query('UPDATE jobs SET attempt = 2 WHERE id = $1', [lost]);
    const [before] = await db.query<Row>('SELECT revision FROM jobs WHERE id = $1', [lost]);
    const writes: number[] = [];
    const batcher = createCompletionBatcher(pool, (jobs) => writes.push(jobs));
    const claim = (id: string) => ({ id, workerId: 7, attempt: 1 });
    // All four in one tick: the first is written at once, the other three wait for it and go in one statement.
    const ended = await Promise.all([
      batcher.complete(claim(first), { n: 1 }),
      batcher.complete(claim(lost), { n: 2 }),
      batcher.complete(claim(second), null),
      batcher.complete(claim(third), { n: [3, 'three'] }),
    ]);
    expect(writes).toEqual([1, 3]);
    expect(ended.map((job) => job?.status ?? null)).toEqual(['completed', null, 'completed', 'completed']);
    expect(ended.map((job) => job?.result)).toEqual([{ n: 1 }, undefined, null, { n: [3, 'three'] }]);

    const rows = await db.query<Row>('SELECT id, status, result, attempt, revision FROM jobs WHERE id = ANY($1) ORDER BY id', [
      [first, lost, second, third],
    ]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(lost)).toMatchObject({ status: 'running', result: null, attempt: 2, revision: before?.revision });
    expect(byId.get(first)).toMatchObject({ status: 'completed', result: { n: 1 } });
    expect(byId.get(second)).toMatchObject({ status: 'completed', result: null });
    expect(byId.get(third)).toMatchObject({ status: 'completed', result: { n: [3, 'three'] } });
    // Per row still: each completed job got exactly one new revision and one event for it (migration 009's
    // statement-level trigger writes the events of the whole statement at once).
    const events = await db.query<{ job_id: string; revision: number; status: string }>(
      'SELECT job_id, revision, status FROM job_events WHERE job_id = ANY($1) AND status = $2',
      [[first, lost, second, third], 'completed'],
    );
    expect(events.map((event) => event.job_id).sort()).toEqual([first, second, third].sort());
    for (const event of events) expect(event.revision).toBe(byId.get(event.job_id)?.revision);
  });

  test('a failed statement rejects every completion of its batch, and the next call writes again', async () => {
    const id = await insertJob(db, { status: 'running', attempt: 1, worker_id: 8, started_at: new Date() });
    const batcher = createCompletionBatcher(pool, () => {});
    // A result PostgreSQL refuses (jsonb cannot hold \u0000) fails the statement as a lost connection would.
    await expect(batcher.complete({ id, workerId: 8, attempt: 1 }, { text: '\u0000' })).rejects.toThrow();
    expect(await batcher.complete({ id, workerId: 8, attempt: 1 }, { ok: true })).toMatchObject({
      status: 'completed',
      result: { ok: true },
    });
  });
});

describe('the runner', () => {
  const JOBS = 40;
  const db = useTestDatabase();
  const gated = gatedKind('batched');
  const app = useTestApp(db, { runner: { concurrency: JOBS } }, [gated.kind]);

  test('many jobs finishing at once are all completed with their own results in fewer statements than jobs; a job whose claim was lost is left alone', async () => {
    const ids: string[] = [];
    for (let n = 0; n < JOBS; n++) ids.push(await insertJob(db, { kind: 'batched', input: { n } }));
    await waitFor('every job to run', async () => (gated.running() === JOBS ? true : undefined), 60_000);
    const [lost, ...others] = ids;
    if (!lost) throw new Error('no jobs');
    // Claimed again meanwhile (as after a recovery): this attempt's end must not touch it.
    await db.query('UPDATE jobs SET attempt = attempt + 1 WHERE id = $1', [lost]);
    const before = (await scrape(app.url)).value('jobql_runner_completion_writes_total');

    gated.open();
    const rows = await waitFor(
      'the other jobs to complete',
      async () => {
        const found = await db.query<Row & { input: { n: number } }>(
          "SELECT id, status, result, input, attempt, revision FROM jobs WHERE id = ANY($1) AND status = 'completed'",
          [others],
        );
        return found.length === others.length ? found : undefined;
      },
      60_000,
    );
    for (const row of rows) expect(row.result).toEqual({ n: row.input.n });
    const writes = (await scrape(app.url)).value('jobql_runner_completion_writes_total') - before;
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThan(others.length);
    // Every attempt's end recorded, the lost claim's too (its run time is observed once its write returned).
    await waitFor('every attempt to be recorded', async () => {
      const ended = (await scrape(app.url)).value('jobql_job_run_seconds_count', { kind: 'batched' });
      return ended === JOBS ? true : undefined;
    });
    const [left] = await db.query<Row>('SELECT status, result, attempt FROM jobs WHERE id = $1', [lost]);
    expect(left).toMatchObject({ status: 'running', result: null, attempt: 2 });
  });
});
