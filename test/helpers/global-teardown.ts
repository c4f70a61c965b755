import { rm } from 'node:fs/promises';
import { dropDatabase } from './global-setup.ts';

export default async function globalTeardown(): Promise<void> {
  const template = process.env.JOBQL_TEST_TEMPLATE_URL;
  if (template) await dropDatabase(template).catch(() => {});
  const embedded = (globalThis as { jobqlEmbedded?: { stop: () => Promise<void>; dir: string } }).jobqlEmbedded;
  if (embedded) {
    await embedded.stop();
    await rm(embedded.dir, { recursive: true, force: true });
  }
}
