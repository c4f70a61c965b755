import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureDatabaseExists } from '../../src/db/database.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { setLogLevel } from '../../src/logger.ts';
import { freePort } from './free-port.ts';

// Runs once before all test files. Picks the PostgreSQL server (DATABASE_URL when set, else an embedded one
// started for this run), and migrates a template database that each test file clones into its own.
export default async function globalSetup(): Promise<void> {
  setLogLevel('warn');
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const dir = await mkdtemp(path.join(tmpdir(), 'jobql-test-pg-'));
    // mkdtemp makes a folder only its owner can enter; as root, PostgreSQL runs as the postgres user.
    await chmod(dir, 0o755);
    // In the terminal's process group: Ctrl-C on `npm test` skips the global teardown, and must not leave it running.
    // A throwaway server: no fsync (no test is about surviving a power loss), and room for many server processes.
    const embedded = await startEmbeddedPostgres(path.join(dir, 'data'), await freePort(), {
      ownSession: false,
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
    });
    (globalThis as { jobqlEmbedded?: unknown }).jobqlEmbedded = { ...embedded, dir };
    const admin = new URL(embedded.databaseUrl);
    admin.pathname = '/postgres';
    serverUrl = admin.toString();
  }
  const template = new URL(serverUrl);
  template.pathname = `/jobql_test_template_${process.pid}`;
  await dropDatabase(template.toString());
  await ensureDatabaseExists(template.toString());
  await runMigrations(template.toString());
  // Jest starts its workers after this, with this environment.
  process.env.JOBQL_TEST_SERVER_URL = serverUrl;
  process.env.JOBQL_TEST_TEMPLATE_URL = template.toString();
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
