import { expect, test } from '@jest/globals';
import { ensureDatabaseExists } from '../src/db/database.ts';
import { attachDatabase, freshDatabaseUrl } from './helpers/database.ts';

// Processes starting together on a database that does not exist yet all try to create it; every one of
// them must come through (the process tests start two; here eight calls make the race near-certain).
test('ensureDatabaseExists called at the same moment by several starters creates the database once and fails none', async () => {
  const fresh = attachDatabase(freshDatabaseUrl());
  try {
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => ensureDatabaseExists(fresh.url)));
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    expect(await fresh.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  } finally {
    await fresh.drop();
  }
});
