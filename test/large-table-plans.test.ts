import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { createPool, type DatabasePool, type Interceptor } from 'slonik';
import {
  claimNextJobs,
  countFinishedJobsPerMinute,
  countJobsByKindAndStatus,
  countQueueChangesPerMinute,
  countUnfinishedJobs,
  deleteFinishedJobs,
  findNextRunAt,
  listJobHistory,
  listJobs,
  pruneJobEvents,
} from '../src/jobs/job-queries.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

// With a large history of finished jobs, the statements that run on a timer (gauges, retention, event
// pruning) and a rare status-and-kind list read through an index, not the whole table. Asserted on the plans
// PostgreSQL chooses for the real statements (captured by an interceptor that prefixes EXPLAIN), after ANALYZE
// of a table seeded like a busy service's: that is the behaviour, timings are for `npm run bench`.
let db: TestDatabase;
let pool: DatabasePool;
const FINISHED = 50_000;

type PlanNode = {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Rows Removed by Filter'?: number;
  'Index Cond'?: string;
  Filter?: string;
  Plans?: PlanNode[];
};
const plans = new Map<string, PlanNode>();
/** Statement name → EXPLAIN options; ANALYZE only for statements that change nothing. */
const explained: Record<string, string> = {
  countUnfinishedJobs: 'FORMAT JSON',
  deleteFinishedJobs: 'FORMAT JSON',
  pruneJobEvents: 'FORMAT JSON',
  listJobs: 'ANALYZE, FORMAT JSON',
  countJobsByKindAndStatus: 'FORMAT JSON',
  countFinishedJobsPerMinute: 'FORMAT JSON',
  countQueueChangesPerMinute: 'FORMAT JSON',
  listJobHistory: 'FORMAT JSON',
  // Analysed: it asks only for a kind with nothing due, so it changes nothing.
  claimNextJobs: 'ANALYZE, FORMAT JSON',
  findNextRunAt: 'ANALYZE, FORMAT JSON',
};

const explainInterceptor: Interceptor = {
  name: 'explain',
  transformQuery: (_context, query) => {
    const options = explained[statementName(query.sql) ?? ''];
    return options ? { ...query, sql: `EXPLAIN (${options}) ${query.sql}` } : query;
  },
  afterQueryExecution: (_context, query, result) => {
    const name = statementName(query.sql);
    const row = result.rows[0] as { 'QUERY PLAN'?: Array<{ Plan: PlanNode }> } | undefined;
    if (name && row?.['QUERY PLAN']) plans.set(name, row['QUERY PLAN'][0]?.Plan as PlanNode);
    return null;
  },
};

function statementName(text: string): string | undefined {
  return /\/\* (\w+) \*\//.exec(text)?.[1];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

function planOf(name: string): PlanNode {
  const plan = plans.get(name);
  if (!plan) throw new Error(`no plan captured for ${name}`);
  return plan;
}

/** The plan reads `table` through an index: no Seq Scan of it anywhere, and a scan of one of its indexes. */
function expectIndexOnly(plan: PlanNode, table: string): void {
  const all = nodes(plan);
  expect(all.filter((node) => node['Relation Name'] === table).map((node) => node['Node Type'])).not.toContain('Seq Scan');
  expect(all.some((node) => node['Index Name']?.startsWith(`${table}_`) && node['Index Name'] !== `${table}_pkey`)).toBe(true);
}

beforeAll(async () => {
  db = await createTestDatabase();
  // Finished jobs of four kinds, created over the last day; failures and cancellations are all of kind echo,
  // so FAILED sleep jobs are a rare combination of two common values. Then 1,000 queued jobs, 1,000 echo jobs
  // scheduled for later and 20 running, and an event per job, recorded when the job last changed. Triggers off:
  // the events are written here, and nothing listens.
  await db.query(`
    SET session_replication_role = replica;
    INSERT INTO jobs (id, tenant, kind, status, input, error, error_code, attempt, worker_id, created_at, updated_at,
                      started_at, finished_at, run_at)
    SELECT gen_random_uuid(), tenant, kind, status, '{}', CASE WHEN status = 'failed' THEN 'x' END,
           CASE WHEN status = 'failed' THEN 'JOB_FAILED' END, 1, 1, t, t, t, t + interval '1 second', t
    FROM generate_series(1, ${FINISHED}) n,
      LATERAL (SELECT CASE WHEN n % 3 = 0 THEN 'other' ELSE 'default' END AS tenant) o,
      LATERAL (SELECT now() - interval '1 day' + n * (interval '1 day' / ${FINISHED}) AS t,
                      (ARRAY['echo', 'sleep', 'fail', 'flaky'])[1 + n % 4] AS kind) k,
      LATERAL (SELECT CASE WHEN kind = 'echo' AND n % 8 = 0 THEN 'failed'
                           WHEN kind = 'echo' AND n % 12 = 0 THEN 'cancelled' ELSE 'completed' END AS status) s;
    INSERT INTO jobs (id, kind, input) SELECT gen_random_uuid(), 'sleep', '{"ms": 1}' FROM generate_series(1, 1000);
    INSERT INTO jobs (id, kind, input, run_at)
    SELECT gen_random_uuid(), 'echo', '{}', now() + interval '1 hour' + n * interval '1 second' FROM generate_series(1, 1000) n;
    INSERT INTO jobs (id, kind, input, status, worker_id, started_at, attempt)
    SELECT gen_random_uuid(), 'sleep', '{"ms": 1}', 'running', 1, now(), 1 FROM generate_series(1, 20);
    INSERT INTO job_events (job_id, revision, status, attempt, updated_at, recorded_at)
    SELECT id, revision, status, attempt, updated_at, updated_at FROM jobs;
    RESET session_replication_role;
    ANALYZE jobs;
    ANALYZE job_events;
  `);
  pool = await createPool(db.url, { interceptors: [explainInterceptor], maxPoolSize: 2 });
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

test('the metrics gauges read only unfinished jobs, through an index', async () => {
  await countUnfinishedJobs(pool, 10_000);
  expectIndexOnly(planOf('countUnfinishedJobs'), 'jobs');
});

test('retention finds finished jobs past their age through an index', async () => {
  await deleteFinishedJobs(pool, 30 * 24 * 3_600_000, 500);
  expectIndexOnly(planOf('deleteFinishedJobs'), 'jobs');
});

test('event pruning finds old events through an index', async () => {
  await pruneJobEvents(pool, 3_600_000, 1000);
  expectIndexOnly(planOf('pruneJobEvents'), 'job_events');
});

for (const statuses of [['failed'], ['failed', 'cancelled']] as const) {
  test(`a rare filter (${statuses.join(' or ')} sleep jobs) reads an index and skips no rows of a common status or kind`, async () => {
    const rows = await listJobs(pool, { tenant: 'default', statuses, kind: 'sleep', after: null, limit: 20 });
    expect(rows).toHaveLength(1); // the EXPLAIN's one row: the statement itself was analysed, not run for rows
    const plan = planOf('listJobs');
    expectIndexOnly(plan, 'jobs');
    const skipped = nodes(plan).reduce((sum, node) => sum + (node['Rows Removed by Filter'] ?? 0), 0);
    expect(skipped).toBeLessThan(100);
  });
}

test('a claim reads only due jobs, a priority level at a time, not the jobs scheduled for later', async () => {
  await claimNextJobs(pool, 1, 4, [{ kind: 'echo', free: 4, maxAttempts: 1, timeoutMs: null }]);
  const all = nodes(planOf('claimNextJobs'));
  const scans = all.filter((node) => node['Relation Name'] === 'jobs');
  expect(scans.map((node) => node['Node Type'])).not.toContain('Seq Scan');
  expect(all.map((node) => node['Node Type'])).toContain('Recursive Union');
  // Each level's due jobs: a range of the kind bounded by the clock (read once, so an index condition can use
  // it), in either index that starts with the kind. The 1,000 echo jobs scheduled for later are not read: a
  // bare clock_timestamp() was a Filter, which fetched each of them.
  const due = scans.filter((node) => node['Index Cond']?.includes('run_at <='));
  expect(due.length).toBeGreaterThan(0);
  for (const node of due) {
    expect(['jobs_claim_kind_order_idx', 'jobs_unfinished_kind_idx']).toContain(node['Index Name']);
    expect(node['Index Cond']).toMatch(/\(kind = w\.kind\).* AND \(run_at <= (?:\$\d+|\(InitPlan \d+\)\.col\d+)\)\)$/);
  }
  expect(all.reduce((sum, node) => sum + (node['Rows Removed by Filter'] ?? 0), 0)).toBe(0);
  // The only Sort is the one across kinds: within a kind the walk keeps claim order and stops at its LIMIT.
  expect(all.filter((node) => node['Node Type'] === 'Sort')).toHaveLength(1);
});

test("an idle runner's next due time is the first entry after now of each kind's range", async () => {
  await findNextRunAt(pool, ['echo', 'sleep']);
  const all = nodes(planOf('findNextRunAt'));
  const scans = all.filter((node) => node['Relation Name'] === 'jobs');
  expect(scans.map((node) => node['Index Name'])).toEqual(['jobs_unfinished_kind_idx']);
  expect(scans[0]?.['Index Cond']).toMatch(/\(kind = k\.kind\) AND \(run_at > (?:\$\d+|\(InitPlan \d+\)\.col\d+)\)/);
  // The 1,000 due sleep jobs and the scheduled echo jobs after the first are not read.
  expect(all.reduce((sum, node) => sum + (node['Rows Removed by Filter'] ?? 0), 0)).toBe(0);
});

// A dashboard's numbers: unfinished jobs in full, finished ones over a recent window, the event log's window.
test('jobStats reads unfinished jobs and the last hour of finished ones through indexes', async () => {
  await countJobsByKindAndStatus(pool, 'default', 60);
  expectIndexOnly(planOf('countJobsByKindAndStatus'), 'jobs');
  const indexes = nodes(planOf('countJobsByKindAndStatus')).map((node) => node['Index Name']);
  expect(indexes).toContain('jobs_finished_at_idx');
});

test("jobThroughput reads the window's finished jobs through the finished_at index", async () => {
  await countFinishedJobsPerMinute(pool, 'default', 60);
  expectIndexOnly(planOf('countFinishedJobsPerMinute'), 'jobs');
  expect(nodes(planOf('countFinishedJobsPerMinute')).map((node) => node['Index Name'])).toContain('jobs_finished_at_idx');
});

test("queue depth reads the window's events and their jobs through indexes", async () => {
  await countQueueChangesPerMinute(pool, 'default', 60);
  expectIndexOnly(planOf('countQueueChangesPerMinute'), 'jobs');
  expectIndexOnly(planOf('countQueueChangesPerMinute'), 'job_events');
});

test("a job's history reads its events by primary key", async () => {
  const [row] = await db.query<{ id: string }>('SELECT id FROM jobs LIMIT 1');
  await listJobHistory(pool, 'default', row?.id as string, 0, 50);
  const all = nodes(planOf('listJobHistory'));
  expect(all.filter((node) => node['Relation Name'] !== undefined).map((node) => node['Node Type'])).not.toContain('Seq Scan');
  expect(all.some((node) => node['Index Name'] === 'job_events_pkey')).toBe(true);
});
