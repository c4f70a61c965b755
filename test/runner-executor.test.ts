import { expect, test } from '@jest/globals';
import type { Job } from '../src/jobs/job.ts';
import { demoKinds } from '../src/kinds/demo.ts';
import { createKindRegistry } from '../src/kinds/registry.ts';
import { executeAttempt } from '../src/runner/executor.ts';

const kinds = createKindRegistry(demoKinds);

// The executor alone: no database, no runner; it only says how an attempt ended.
function claimedJob(kind: string, input: unknown, timeoutMs: number | null = null): Job {
  const now = new Date().toISOString().replace('Z', '000Z');
  return {
    id: '00000000-0000-4000-8000-000000000001',
    tenant: 'default',
    kind,
    status: 'running',
    input: input as Job['input'],
    result: null,
    error: null,
    errorCode: null,
    progress: null,
    attempt: 1,
    maxAttempts: 1,
    priority: 0,
    timeoutMs,
    revision: 1,
    workerId: 1,
    createdAt: now,
    updatedAt: now,
    startedAt: now,
    finishedAt: null,
    runAt: now,
    cancelRequestedAt: null,
    idempotencyKey: null,
  };
}

const run = (job: Job, controller = new AbortController(), abortGraceMs = 200) =>
  executeAttempt(job, { kind: kinds.find(job.kind), controller, abortGraceMs, progress: () => {} });

test('a handler that ignores its signal past its timeout: the attempt ends TIMEOUT after the abort grace, not when the handler returns', async () => {
  const started = performance.now();
  const outcome = await run(claimedJob('sleep', { ms: 60_000, ignoreSignal: true }, 100));
  expect(outcome).toEqual({ error: { code: 'TIMEOUT', message: 'the job ran longer than its timeout of 100 ms' } });
  // The handler would sleep a minute; the generous bound only proves it was abandoned.
  expect(performance.now() - started).toBeLessThan(30_000);
});

test('an abort from outside (cancel, stop) ends the attempt with that reason, even when the handler ignores it', async () => {
  const controller = new AbortController();
  const outcome = run(claimedJob('sleep', { ms: 60_000, ignoreSignal: true }), controller);
  controller.abort({ code: 'INTERRUPTED', message: 'stopping' });
  expect(await outcome).toEqual({ error: { code: 'INTERRUPTED', message: 'stopping' } });
});

test('an input its kind rejects is BAD_INPUT and final; an unknown kind is UNKNOWN_KIND; a result is returned as stored', async () => {
  expect(await run(claimedJob('sleep', { ms: 'soon' }))).toMatchObject({ error: { code: 'BAD_INPUT' }, final: true });
  expect(await run(claimedJob('no-such-kind', {}))).toMatchObject({ error: { code: 'UNKNOWN_KIND' } });
  expect(await run(claimedJob('echo', { a: [1, 'x'] }))).toEqual({ result: { a: [1, 'x'] } });
});
