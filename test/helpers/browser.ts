import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '@jest/globals';
import { type BrowserContext, chromium } from 'playwright-core';

// Debian's Chromium driven by playwright-core (which downloads no browser of its own). .ci/run installs it when
// missing; without it a browser test is skipped on a developer's machine and fails under CI=true, where it must run.
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

/** `test` when Chromium is here, else `test.skip` (with a warning naming the file); throws under CI=true. */
export function browserTestFor(file: string): typeof test | typeof test.skip {
  if (haveChromium) return test;
  if (process.env.CI === 'true')
    throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run) so that ${file} runs`);
  console.warn(`${file}: skipped, no ${CHROMIUM} (apt-get install -y chromium)`);
  return test.skip;
}

export type TestBrowser = { context: BrowserContext; close: () => Promise<void> };

/**
 * Headless Chromium with a fresh profile (nothing cached from an earlier page can stand in for what the server
 * sends), or null without Chromium. The flags keep it from reaching out: this machine's network is closed, and
 * background connections would be refused many at a time.
 */
export async function launchTestBrowser(prefix: string, viewport?: { width: number; height: number }): Promise<TestBrowser | null> {
  if (!haveChromium) return null;
  const profile = mkdtempSync(path.join(tmpdir(), prefix));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ...(viewport ? { viewport } : {}),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
