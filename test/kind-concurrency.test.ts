import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from '@jest/globals';
import type { CommonQueryMethods } from 'slonik';
import { createDatabasePool } from '../src/db/pool.ts';
import { claimNextJobs } from '../src/jobs/job-queries.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { insertJobs, type TestDatabase, useTestDatabase } from './helpers/database.ts';
import { gatedKind } from './helpers/gated-kind.ts';
import { scrape } from './helpers/metrics.ts';
import { waitFor } from './helpers/wait.ts';

// Per-kind concurrency: a kind's `concurrency` is the most of its jobs one process runs at once, while
// WORKER_CONCURRENCY stays the process's total; and a process claims only the kinds it has handlers for.

/** Queued rows of `kind` written straight into the table (as jobql_create_job or another process would). */
async function enqueue(db: Pick<TestDatabase, 'query'>, kind: string, count: number): Promise<string[]> {
  return insertJobs(db, count, { kind, input: {} });
}

async function statusCounts(db: Pick<TestDatabase, 'query'>, kind: string): Promise<Record<string, number>> {
  const rows = await db.query<{ status: string; count: string }>('SELECT status, count(*) FROM jobs WHERE kind = $1 GROUP BY status', [
    kind,
  ]);
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
}

/** Several apps in one test, stopped at its end whatever happens. */
async function withApps(run: (start: (...args: Parameters<typeof startTestApp>) => Promise<TestApp>) => Promise<void>) {
  const apps: TestApp[] = [];
  try {
    await run(async (...args) => {
      const app = await startTestApp(...args);
      apps.push(app);
      return app;
    });
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
  }
}

describe('a kind with concurrency 1', () => {
  const db = useTestDatabase();
  afterEach(async () => {
    await db.query('DELETE FROM jobs');
  });

  test('runs one job at a time while another kind keeps running several, within WORKER_CONCURRENCY', async () => {
    const slow = gatedKind('slow', { concurrency: 1 });
    const quick = gatedKind('quick');
    await withApps(async (start) => {
      await enqueue(db, 'slow', 3);
      await enqueue(db, 'quick', 6);
      await start(db.url, { runner: { concurrency: 4 } }, [slow.kind, quick.kind]);
      // Every slot taken: one slow job, and the three others for quick, though two more slow jobs are due.
      await waitFor('one slow and three quick jobs running', async () => (slow.running() === 1 && quick.running() === 3) || undefined);
      expect(await statusCounts(db, 'slow')).toEqual({ running: 1, queued: 2 });
      // Quick jobs finish and the rest of them run; the slow kind stays at one however many slots free up.
      quick.open();
      await waitFor('every quick job completed', async () => (await statusCounts(db, 'quick')).completed === 6 || undefined);
      expect(await statusCounts(db, 'slow')).toEqual({ running: 1, queued: 2 });
      expect(slow.running()).toBe(1);
      slow.open();
      await waitFor('every slow job completed', async () => (await statusCounts(db, 'slow')).completed === 3 || undefined);
    });
    expect(slow.highest()).toBe(1);
    expect(slow.started()).toBe(3);
    expect(quick.highest()).toBe(3);
  });

  test('whose only due jobs wait for its slot costs no claims: the runner is not woken until one of them ends', async () => {
    const slow = gatedKind('slow', { concurrency: 1 });
    const quick = gatedKind('quick');
    quick.open();
    await withApps(async (start) => {
      // No poll during the test: only notifications and finished jobs wake the runner.
      const app = await start(db.url, { runner: { concurrency: 4, pollIntervalMs: 600_000 } }, [slow.kind, quick.kind]);
      const claims = async () => (await scrape(app.url)).value('jobql_runner_claims_total');
      await enqueue(db, 'slow', 3);
      await waitFor('a slow job running', async () => slow.running() === 1 || undefined);
      // The claims the wake-up for the new jobs made (one that took a slow job, one that found nothing more).
      await waitFor('the claims of that wake-up to end', async () => {
        const before = await claims();
        await sleep(300);
        return (await claims()) === before || undefined;
      });
      const before = await claims();
      // Two slow jobs are due and three slots free: a claim-skip-release loop would claim without end here.
      await sleep(1500);
      expect((await claims()) - before).toBe(0);
      expect(await statusCounts(db, 'slow')).toEqual({ running: 1, queued: 2 });
      slow.open();
      await waitFor('every slow job completed', async () => (await statusCounts(db, 'slow')).completed === 3 || undefined);
      // Each finished job woke one round of claims (about two statements): a handful in all, not a loop.
      expect((await claims()) - before).toBeLessThanOrEqual(10);
    });
    expect(slow.highest()).toBe(1);
  });

  test('a job that ends when its claim found nothing else due runs no claim: one claim per job at a low rate', async () => {
    const quick = gatedKind('quick');
    quick.open();
    await withApps(async (start) => {
      // No poll during the test: only notifications and finished jobs wake the runner.
      const app = await start(db.url, { runner: { concurrency: 4, pollIntervalMs: 600_000 } }, [quick.kind]);
      const claims = async () => (await scrape(app.url)).value('jobql_runner_claims_total');
      const settled = async () => {
        let last = await claims();
        await waitFor('the claims to stop', async () => {
          await sleep(300);
          const now = await claims();
          if (now === last) return true;
          last = now;
          return undefined;
        });
        return last;
      };
      const before = await settled();
      for (let n = 1; n <= 3; n++) {
        await enqueue(db, 'quick', 1);
        await waitFor(`job ${n} completed`, async () => (await statusCounts(db, 'quick')).completed === n || undefined);
      }
      // Each NOTIFY woke one claim, which took the job and found nothing else: no second claim to make sure,
      // and none when the job ended (three statements per job before).
      expect((await settled()) - before).toBe(3);
    });
    expect(quick.started()).toBe(3);
  });

  test('is a per-process limit: two processes each run one of its jobs', async () => {
    const kindsOf = () => {
      const slow = gatedKind('slow', { concurrency: 1 });
      return { slow, kinds: [slow.kind] };
    };
    const a = kindsOf();
    const b = kindsOf();
    await withApps(async (start) => {
      await enqueue(db, 'slow', 4);
      await start(db.url, { runner: { concurrency: 4 } }, a.kinds);
      await start(db.url, { runner: { concurrency: 4 } }, b.kinds);
      await waitFor('one slow job running on each process', async () => (a.slow.running() === 1 && b.slow.running() === 1) || undefined);
      const running = await db.query<{ worker_id: number }>("SELECT worker_id FROM jobs WHERE kind = 'slow' AND status = 'running'");
      expect(new Set(running.map((row) => row.worker_id)).size).toBe(2);
      a.slow.open();
      b.slow.open();
      await waitFor('every slow job completed', async () => (await statusCounts(db, 'slow')).completed === 4 || undefined);
    });
    expect(a.slow.highest()).toBe(1);
    expect(b.slow.highest()).toBe(1);
  });
});

describe('the claim statement', () => {
  const db = useTestDatabase();

  test("reads each kind's range of the claim index, however many jobs of other kinds are queued", async () => {
    // A large table: finished history, a backlog of one kind, a few jobs of another.
    await db.query(
      `INSERT INTO jobs (id, kind, status, finished_at, result)
       SELECT gen_random_uuid(), 'old', 'completed', now(), '{}' FROM generate_series(1, 20000)`,
    );
    await insertJobs(db, 5000, { kind: 'backlog', input: {} });
    await insertJobs(db, 20, { kind: 'wanted', input: {} });
    await db.query('ANALYZE jobs');
    // The statement exactly as the runner sends it, captured rather than run, then explained.
    const captured: Array<{ sql: string; values: readonly unknown[] }> = [];
    const recorder = {
      any: async (query: { sql: string; values: readonly unknown[] }) => {
        captured.push(query);
        return [];
      },
    } as unknown as CommonQueryMethods;
    await claimNextJobs(recorder, 1, 4, [
      { kind: 'wanted', free: 4, maxAttempts: 1, timeoutMs: null },
      { kind: 'saturated-elsewhere', free: 2, maxAttempts: 1, timeoutMs: null },
    ]);
    const [statement] = captured;
    if (!statement) throw new Error('claimNextJobs sent no statement');
    // slonik numbers its placeholders $slonik_1, $slonik_2 … and turns them into $1, $2 … when it sends them.
    const text = statement.sql.replaceAll('$slonik_', '$');
    const rows = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, [...statement.values]);
    const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
    // Per kind and priority level, the due jobs: a range of that kind in one of the indexes that start with it.
    expect(plan).toMatch(/Index Only Scan using jobs_claim_kind_order_idx on jobs/);
    expect(plan).toMatch(/Index Scan using (jobs_claim_kind_order_idx|jobs_unfinished_kind_idx) on jobs/);
    expect(plan).toMatch(/Index Cond: \(.*\(kind = w\.kind\).* AND \(run_at <= (?:\$\d+|\(InitPlan \d+\)\.col\d+)\)\)/);
    expect(plan).not.toMatch(/Seq Scan on jobs/);
    expect(plan).toMatch(/LockRows/);
  });
});

describe('the claim across priority levels', () => {
  const db = useTestDatabase();

  test("takes a kind's due jobs highest priority first, FIFO within one, up to its share, never one not yet due", async () => {
    // Inserted out of order; the jobs scheduled for later have the highest priorities.
    await db.query(
      `INSERT INTO jobs (id, kind, input, priority, run_at)
       SELECT gen_random_uuid(), 'levels', jsonb_build_object('name', name), priority, now() + due * interval '1 second'
       FROM (VALUES ('low-1', -3, -5), ('mid-1', 0, -4), ('high-1', 5, -3), ('mid-2', 0, -2), ('high-2', 5, -1),
                    ('later', 100, 3600), ('later-mid', 0, 3600)) AS j (name, priority, due)`,
    );
    const pool = await createDatabasePool(db.url, 1);
    try {
      const claim = async (free: number) =>
        (await claimNextJobs(pool, 1, free, [{ kind: 'levels', free, maxAttempts: 1, timeoutMs: null }])).map(
          (job) => (job.input as { name: string }).name,
        );
      expect(await claim(3)).toEqual(['high-1', 'high-2', 'mid-1']);
      expect(await claim(10)).toEqual(['mid-2', 'low-1']);
      expect(await claim(10)).toEqual([]);
    } finally {
      await pool.end();
    }
  });
});

describe('a process that runs only some kinds', () => {
  const db = useTestDatabase();

  test('claims only its kinds; the others stay QUEUED, counted by jobql_jobs_queued_unknown_kind, until a process that knows them starts', async () => {
    const a = gatedKind('a');
    const b = gatedKind('b');
    a.open();
    b.open();
    await withApps(async (start) => {
      const appA = await start(db.url, { runner: { concurrency: 4 } }, [a.kind]);
      const bJobs = await enqueue(db, 'b', 3);
      await enqueue(db, 'a', 3);
      // The process's a jobs complete: its runner claimed (more than once) while the b jobs were due.
      await waitFor('the a jobs completed', async () => (await statusCounts(db, 'a')).completed === 3 || undefined);
      expect(await statusCounts(db, 'b')).toEqual({ queued: 3 });
      const [untouched] = await db.query<{ attempts: string }>('SELECT sum(attempt) AS attempts FROM jobs WHERE id = ANY($1)', [bJobs]);
      expect(untouched?.attempts).toBe('0');
      // The API shows them as they are: queued.
      const response = await fetch(`${appA.url}/jobs/${bJobs[0]}`);
      expect(((await response.json()) as { status: string }).status).toBe('QUEUED');
      expect((await scrape(appA.url)).value('jobql_jobs_queued_unknown_kind')).toBe(3);
      expect(b.started()).toBe(0);

      const appB = await start(db.url, { runner: { concurrency: 2 } }, [b.kind]);
      await waitFor('the b jobs completed', async () => (await statusCounts(db, 'b')).completed === 3 || undefined);
      expect(b.started()).toBe(3);
      expect(a.started()).toBe(3);
      expect((await scrape(appA.url)).value('jobql_jobs_queued_unknown_kind')).toBe(0);
      // B stopped (its row is gone): a new b job is one no live process runs.
      await appB.stop();
      await enqueue(db, 'b', 1);
      expect((await scrape(appA.url)).value('jobql_jobs_queued_unknown_kind')).toBe(1);
    });
  });
});
