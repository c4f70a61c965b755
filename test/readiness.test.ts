import { expect, test } from '@jest/globals';
import pg from 'pg';
import { useTestApp } from './helpers/app.ts';
import { useTestDatabase } from './helpers/database.ts';
import { waitFor } from './helpers/wait.ts';

const db = useTestDatabase();
const app = useTestApp(db, {
  runner: { concurrency: 0 },
  auth: { apiKeys: [{ tenant: 'acme', key: 'acme-key-0123456789abcdef' }] },
  http: { metricsPort: 0 },
});

async function readyz(): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const response = await fetch(`${app.url}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; reason?: string } };
}

test('/readyz is 200 while the database answers, 503 with the reason while it does not, and 200 again after', async () => {
  expect(await readyz()).toEqual({ status: 200, body: { status: 'ready' } });
  const metricsUp = await fetch(`${app.metricsUrl}/metrics`);
  expect(await metricsUp.text()).toMatch(/^jobql_jobs_queued 0$/m);
  const name = new URL(db.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: process.env.JOBQL_TEST_SERVER_URL });
  await admin.connect();
  try {
    // The database goes away for this process: new connections refused, existing ones ended.
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    const down = await waitFor('/readyz to report the database', async () => {
      const answer = await readyz();
      return answer.status === 503 ? answer : undefined;
    });
    expect(down.body).toEqual({ status: 'not ready', reason: 'the database does not answer' });
    const health = await fetch(`${app.url}/healthz`);
    await health.text();
    expect(health.status).toBe(200); // the process itself is up
    // /metrics still answers; the gauges it could not read from the database are NaN (unknown), not stale
    // (prom-client writes "Nan"; Prometheus parses it case-insensitively).
    const metrics = await fetch(`${app.metricsUrl}/metrics`);
    const text = await metrics.text();
    expect(metrics.status).toBe(200);
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^jobql_subscriptions_active 0$/m);
    expect(text).toMatch(/^jobql_jobs_queued nan$/im);
  } finally {
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} ALLOW_CONNECTIONS true`);
    await admin.end();
  }
  await waitFor('/readyz to recover', async () => ((await readyz()).status === 200 ? true : undefined));
});
