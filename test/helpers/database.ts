import { randomBytes } from 'node:crypto';
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
