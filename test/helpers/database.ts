import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import pg from 'pg';
import { dropDatabase } from './global-setup.ts';

export type TestDatabase = {
  url: string;
  /** Runs SQL against the test database, for assertions about the table itself. */
  query: <Row extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]) => Promise<Row[]>;
  drop: () => Promise<void>;
};

function serverUrl(): string {
  const url = process.env.JOBQL_TEST_SERVER_URL;
  if (!url) throw new Error('JOBQL_TEST_SERVER_URL is not set: run the tests with `npm test`');
  return url;
}

/** A database URL with a fresh, unused name on the test server (the database itself does not exist yet). */
export function freshDatabaseUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/jobql_test_${randomBytes(6).toString('hex')}`;
  return url.toString();
}

/** A new database cloned from the migrated template: each test file gets its own, in milliseconds. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = new URL(process.env.JOBQL_TEST_TEMPLATE_URL ?? '');
  const url = freshDatabaseUrl();
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(
      `CREATE DATABASE ${pg.escapeIdentifier(new URL(url).pathname.slice(1))} TEMPLATE ${pg.escapeIdentifier(template.pathname.slice(1))}`,
    );
  } finally {
    await admin.end();
  }
  return attachDatabase(url);
}

/** Query helpers for a database that exists (or will), with a drop that removes it. */
export function attachDatabase(url: string): TestDatabase {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection ended by the server (a test terminating backends, a forced drop) is replaced on the
  // next query; without a listener its error event would crash the test process.
  pool.on('error', () => {});
  return {
    url,
    query: async (text, values) => (await pool.query(text, values)).rows,
    drop: async () => {
      await pool.end();
      await dropDatabase(url);
    },
  };
}

/** A test database for the file (or describe block) that declares it, with cleanups that must run before the drop. */
export type TestDatabaseHandle = Omit<TestDatabase, 'drop'> & {
  /** Runs `cleanup` (stopping an app that uses the database) before the database is dropped; last registered, first run. */
  beforeDrop: (cleanup: () => Promise<void>) => void;
};

/**
 * Registers beforeAll/afterAll for a fresh database cloned from the migrated template, dropped after the
 * block's tests. The handle can be used at once; its url and query work inside hooks and tests.
 */
export function useTestDatabase(): TestDatabaseHandle {
  let db: TestDatabase | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  const current = (): TestDatabase => {
    if (!db) throw new Error('useTestDatabase: the database exists only inside hooks and tests');
    return db;
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    // Whatever uses the database stops first: a forced drop under a running app would fail its connections.
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await db?.drop();
    db = undefined;
  });
  return {
    get url() {
      return current().url;
    },
    query: (text, values) => current().query(text, values),
    beforeDrop: (cleanup) => {
      cleanups.push(cleanup);
    },
  };
}

/** The jobs columns a test may set, with their SQL types; every other column takes its default. */
const jobColumns = {
  id: 'uuid',
  tenant: 'text',
  kind: 'text',
  status: 'text',
  input: 'jsonb',
  result: 'jsonb',
  error: 'text',
  error_code: 'text',
  progress: 'float8',
  attempt: 'int',
  max_attempts: 'int',
  worker_id: 'int',
  created_at: 'timestamptz',
  started_at: 'timestamptz',
  finished_at: 'timestamptz',
  run_at: 'timestamptz',
} as const;

export type JobRow = {
  id: string;
  tenant: string;
  kind: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  /** jsonb columns take any JSON value; jsonText(…) is stored as it is (for JSON no JS value can hold). */
  input: unknown;
  result: unknown;
  error: string;
  error_code: string;
  progress: number;
  attempt: number;
  max_attempts: number;
  worker_id: number;
  created_at: Date;
  started_at: Date;
  finished_at: Date;
  run_at: Date;
};

const rawJson = Symbol('JSON text');
type JsonText = { [rawJson]: string };

/** JSON text for a jsonb column, stored as it is: for JSON that no JS value can hold (nested deeper than JSON.stringify goes). */
export function jsonText(text: string): JsonText {
  return { [rawJson]: text };
}

/**
 * Writes jobs rows straight into the table, for states the API cannot reach (or not quickly): jobs that finished
 * days ago, a running job of a process that is gone, JSON too deep to accept. `count` rows alike, each with a new
 * id and kind 'echo' unless `fields` say otherwise; returns their ids.
 */
export async function insertJobs(db: Pick<TestDatabase, 'query'>, count: number, fields: Partial<JobRow> = {}): Promise<string[]> {
  const row: Partial<JobRow> = { kind: 'echo', ...fields };
  const columns = (Object.keys(row) as Array<keyof JobRow>).filter((column) => column !== 'id' && row[column] !== undefined);
  const values = columns.map((column) => {
    const value = row[column];
    if (jobColumns[column] !== 'jsonb') return value;
    return typeof value === 'object' && value !== null && rawJson in value ? (value as JsonText)[rawJson] : JSON.stringify(value);
  });
  // Typed parameters: in INSERT … SELECT, PostgreSQL would read untyped ones as text.
  const selected = columns.map((column, index) => `$${index + 3}::${jobColumns[column]}`);
  const names = columns.map((column) => pg.escapeIdentifier(column));
  const rows = await db.query<{ id: string }>(
    `INSERT INTO jobs (${['id', ...names].join(', ')})
     SELECT ${['coalesce($2::uuid, gen_random_uuid())', ...selected].join(', ')} FROM generate_series(1, $1::int) RETURNING id`,
    [count, row.id ?? null, ...values],
  );
  return rows.map(({ id }) => id);
}

/** One jobs row (see insertJobs); returns its id. */
export async function insertJob(db: Pick<TestDatabase, 'query'>, fields: Partial<JobRow> = {}): Promise<string> {
  const [id] = await insertJobs(db, 1, fields);
  if (id === undefined) throw new Error('insertJob: the INSERT returned no row');
  return id;
}

export type TestRole = { name: string; drop: () => Promise<void> };

/**
 * A login role with this password on the test server, allowed to create its own database, for tests about
 * credentials (drop its databases before the role).
 */
export async function createTestRole(password: string): Promise<TestRole> {
  const name = `jobql_test_role_${randomBytes(6).toString('hex')}`;
  const asAdmin = async (text: string) => {
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    try {
      await admin.query(text);
    } finally {
      await admin.end();
    }
  };
  await asAdmin(`CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN CREATEDB PASSWORD ${pg.escapeLiteral(password)}`);
  return { name, drop: () => asAdmin(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(name)}`) };
}
