import { randomBytes } from 'node:crypto';
import { afterEach, expect, test } from '@jest/globals';
import { attachDatabase, createTestRole, freshDatabaseUrl, type TestDatabase, type TestRole } from './helpers/database.ts';
import { createServerGroup } from './helpers/server-group.ts';
import { runServerToExit } from './helpers/server-process.ts';

// What an operator sees when starting the service: a bad setting or an unreachable database is one line
// on stderr and exit code 1; a good start logs the database it uses, never its password.
const servers = createServerGroup();
let created: TestDatabase | undefined;
let role: TestRole | undefined;

afterEach(async () => {
  await servers.stopAll();
  await created?.drop();
  created = undefined;
  await role?.drop();
  role = undefined;
});

// A database that refuses connections, so that a start that got past the configuration by mistake fails
// fast instead of starting an embedded PostgreSQL.
const UNREACHABLE = 'postgres://root:s3cret@127.0.0.1:1/jobql';

test.each([
  ['PORT', 'abc'],
  ['WORKER_CONCURRENCY', '-1'],
  ['SHUTDOWN_GRACE_MS', 'x'],
  ['DATABASE_URL', 'mysql://root:s3cret@db.example/jobql'],
])(
  '%s=%s stops startup with exit code 1 and one stderr line naming the variable',
  async (name, value) => {
    const { exit, stderr } = await runServerToExit({ DATABASE_URL: UNREACHABLE, [name]: value });
    expect(exit).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^jobql: invalid configuration: ${name} `));
    // A connection string may carry a password: it is never repeated back.
    expect(stderr).not.toContain('s3cret');
  },
  90_000,
);

test('an unreachable database stops startup, after DATABASE_STARTUP_TIMEOUT_MS, with exit code 1 and one line starting "jobql: could not start", without the password', async () => {
  const { exit, stderr, plainLines } = await runServerToExit({ DATABASE_URL: UNREACHABLE, DATABASE_STARTUP_TIMEOUT_MS: '2000' });
  expect(exit).toBe(1);
  // Besides its JSON log lines, the process writes exactly one line: the reason it could not start.
  expect(plainLines).toHaveLength(1);
  expect(plainLines[0]).toMatch(/^jobql: could not start: \S/);
  expect(stderr).not.toContain('s3cret');
});

test('the log says which database the server uses, without the password', async () => {
  // A role of its own with a real password, which the embedded test server checks (a trusting server ignores it).
  const password = `s3cret-${randomBytes(6).toString('hex')}`;
  role = await createTestRole(password);
  const url = new URL(freshDatabaseUrl());
  url.username = role.name;
  url.password = password;
  created = attachDatabase(url.toString());
  const server = await servers.start({ DATABASE_URL: url.toString() });

  const redacted = new URL(url);
  redacted.password = '***';
  expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'using database', database: redacted.toString() }));
  expect(JSON.stringify(server.logs)).not.toContain(password);
});
