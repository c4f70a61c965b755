import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, expect, test } from '@jest/globals';
import { print } from 'graphql';
import { loadConfig } from '../src/config.ts';
import { resolveLogFormat } from '../src/logger.ts';
import { CreateJobDocument, GetJobDocument } from './generated/graphql.ts';
import { useTestDatabase } from './helpers/database.ts';
import { data } from './helpers/graphql.ts';
import { collect, wsClient } from './helpers/live-clients.ts';
import { createServerGroup } from './helpers/server-group.ts';
import type { ServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

// The logs of a real server process: JSON lines an operator's tools can read, one per job transition at
// info, joined to the request that caused them, and nothing secret in them.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KEY = 'logging-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const SECRET_INPUT = 'input-s3cret-7f2a';
const db = useTestDatabase();
const servers = createServerGroup();

afterEach(async () => {
  await servers.stopAll();
});

/** Creates an echo job with a request id of the test's choosing; returns the job id and the response's request id. */
async function createWithRequestId(server: ServerProcess, requestId?: string): Promise<{ id: string; requestId: string | null }> {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AUTH, ...(requestId === undefined ? {} : { 'x-request-id': requestId }) },
    body: JSON.stringify({ query: print(CreateJobDocument), variables: { input: { kind: 'echo', input: { secret: SECRET_INPUT } } } }),
  });
  const body = (await response.json()) as { data: { createJob: { id: string } } };
  return { id: body.data.createJob.id, requestId: response.headers.get('x-request-id') };
}

async function untilLogged(server: ServerProcess, jobId: string, msg: string) {
  return waitFor(`"${msg}" logged for ${jobId}`, async () => server.logs.find((line) => line.jobId === jobId && line.msg === msg));
}

test('each line is JSON with a level name, an ISO time and a message; a job logs each transition once at info, with the request id', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, API_KEYS: `acme:${KEY}` });
  const { id, requestId } = await createWithRequestId(server, 'req-logging-1');
  expect(requestId).toBe('req-logging-1');
  await untilLogged(server, id, 'job completed');
  const { job } = await data(server.url, GetJobDocument, { id }, AUTH);
  expect(job?.status).toBe('COMPLETED');

  const output = server.stderr();
  const lines = output.slice(0, output.lastIndexOf('\n')).split('\n'); // whole lines only
  expect(server.logs.length).toBeGreaterThanOrEqual(lines.length); // every whole line was JSON
  for (const line of server.logs) {
    expect(['debug', 'info', 'warn', 'error']).toContain(line.level);
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof line.msg).toBe('string');
    expect(line.pid).toBe(server.child.pid);
  }
  const ofJob = server.logs.filter((line) => line.jobId === id);
  expect(ofJob.map((line) => [line.level, line.msg])).toEqual([
    ['info', 'job created'],
    ['info', 'job started'],
    ['info', 'job completed'],
  ]);
  expect(ofJob[0]).toMatchObject({ requestId: 'req-logging-1', kind: 'echo', tenant: 'acme' });
  expect(ofJob[1]).toMatchObject({ kind: 'echo', attempt: 1, workerId: expect.any(Number) });
  // The end of a run says how long it took; a success carries no error fields at all (not even nulls).
  expect(ofJob[2]).toMatchObject({ kind: 'echo', attempt: 1, durationMs: expect.any(Number) });
  expect(ofJob[2]?.durationMs).toBeGreaterThanOrEqual(0);
  expect(ofJob[2]).not.toHaveProperty('errorCode');
  expect(ofJob[2]).not.toHaveProperty('errorMessage');
  // At info, neither the job's input nor its result (which echoes it) nor the API key is written anywhere.
  expect(server.stderr()).not.toContain(SECRET_INPUT);
  expect(server.stderr()).not.toContain(KEY);
});

test('a request id is made when the client sends none, or one that is not a plain token of at most 100 characters', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, API_KEYS: `acme:${KEY}`, WORKER_CONCURRENCY: '0' });
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const none = await createWithRequestId(server);
  const spaced = await createWithRequestId(server, 'has spaces');
  const long = await createWithRequestId(server, 'x'.repeat(101));
  const kept = await createWithRequestId(server, 'x'.repeat(100));
  for (const made of [none, spaced, long]) {
    expect(made.requestId).toMatch(uuid);
    expect((await untilLogged(server, made.id, 'job created')).requestId).toBe(made.requestId);
  }
  expect(new Set([none.requestId, spaced.requestId, long.requestId]).size).toBe(3);
  expect(kept.requestId).toBe('x'.repeat(100));
  // Probes and errors carry one too.
  const probe = await fetch(`${server.url}/healthz`);
  await probe.text();
  expect(probe.headers.get('x-request-id')).toMatch(uuid);
  const unauthenticated = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'x-request-id': 'req-401' } });
  await unauthenticated.text();
  expect(unauthenticated.status).toBe(401);
  expect(unauthenticated.headers.get('x-request-id')).toBe('req-401');
  // Over graphql-ws an operation's lines carry <connection id>/<operation id>.
  const client = wsClient(server.url, AUTH);
  try {
    const { results, done } = collect(client, CreateJobDocument, { input: { kind: 'echo' } });
    expect(await done).toEqual({ completed: true });
    const id = results[0]?.data?.createJob.id ?? '';
    expect((await untilLogged(server, id, 'job created')).requestId).toMatch(/^[0-9a-f-]{36}\/.+$/);
  } finally {
    await client.dispose();
  }
});

test('job inputs and results are logged at debug, and only then', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, API_KEYS: `acme:${KEY}`, LOG_LEVEL: 'debug' });
  const { id } = await createWithRequestId(server, 'req-debug');
  await untilLogged(server, id, 'job completed');
  const result = await untilLogged(server, id, 'job result');
  expect(result).toMatchObject({ level: 'debug', result: { secret: SECRET_INPUT } });
  const inputs = server.logs.filter((line) => line.jobId === id && line.msg === 'job input');
  // Once when created (with the request id), once when an attempt starts.
  expect(inputs).toHaveLength(2);
  expect(inputs.every((line) => line.level === 'debug')).toBe(true);
  // The request's line and the runner's may come in either order: the runner can claim the committed job
  // before the request's code goes on to log.
  expect(inputs.find((line) => line.requestId === 'req-debug')).toMatchObject({ input: { secret: SECRET_INPUT } });
  // Each line carries its own fields and the request's id, not those of the lines logged before it in the
  // same request: the request line that ends the createJob request has neither the job nor its input.
  const request = await waitFor('the request line', async () =>
    server.logs.find((line) => line.msg === 'request' && line.requestId === 'req-debug'),
  );
  expect(request).not.toHaveProperty('jobId');
  expect(request).not.toHaveProperty('input');
  expect(request).not.toHaveProperty('tenant');
  // Debug still never shows the key.
  expect(server.stderr()).not.toContain(KEY);
});

const run = promisify(execFile);
const logOneError = `
  import { logger } from './src/logger.ts';
  const error = Object.assign(new Error('insert failed', { cause: new Error('socket closed') }), {
    code: '23505', values: ['${SECRET_INPUT}'], query: { sql: 'INSERT …', values: ['${SECRET_INPUT}'] },
  });
  logger.error('could not record the job', { err: error, jobId: 'j-1' });`;

test('an error is logged by type, message, code, stack and cause only: no other property, since a database error carries the query values', async () => {
  const { stderr } = await run(process.execPath, ['--input-type=module', '-e', logOneError], { cwd: root });
  const line = JSON.parse(stderr.trim()) as { level: string; msg: string; jobId: string; err: Record<string, unknown> };
  expect(line).toMatchObject({ level: 'error', msg: 'could not record the job', jobId: 'j-1' });
  expect(Object.keys(line.err).sort()).toEqual(['cause', 'code', 'message', 'stack', 'type']);
  expect(line.err).toMatchObject({ type: 'Error', message: 'insert failed', code: '23505', cause: { message: 'socket closed' } });
  expect(stderr).not.toContain(SECRET_INPUT);
});

test('on a terminal each event is one line for people, not JSON', async () => {
  // script(1) gives the child a pseudo-terminal, as a developer's shell would.
  const command = `${JSON.stringify(process.execPath)} --input-type=module -e "import { logger } from './src/logger.ts'; logger.info('job failed', { jobId: 'j-2', attempt: 2, durationMs: 12.5, errorCode: 'JOB_FAILED', errorMessage: 'boom' });"`;
  const { stdout } = await run('script', ['-qec', command, '/dev/null'], { cwd: root });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing the terminal's colour codes
  const text = stdout.replace(/\u001b\[[0-9;]*m/g, '');
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: job failed /);
  expect(lines[0]).toContain('"jobId":"j-2","attempt":2,"durationMs":12.5,"errorCode":"JOB_FAILED","errorMessage":"boom"');
  expect(lines[0]).not.toContain('"level"');
});

test('LOG_FORMAT chooses: auto is pretty on a terminal and JSON elsewhere; json and pretty force either', async () => {
  expect(resolveLogFormat('auto', true)).toBe('pretty');
  expect(resolveLogFormat('auto', false)).toBe('json');
  expect(resolveLogFormat('json', true)).toBe('json');
  expect(resolveLogFormat('pretty', false)).toBe('pretty');
  expect(loadConfig({}).log.format).toBe('auto');
  expect(() => loadConfig({ LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT/);
  // On a terminal LOG_FORMAT=json still writes JSON lines (for piping a dev server's output into jq).
  const command = `${JSON.stringify(process.execPath)} --input-type=module -e "import { logger, setLogFormat } from './src/logger.ts'; setLogFormat('json'); logger.info('forced', { jobId: 'j-3' });"`;
  const { stdout } = await run('script', ['-qec', command, '/dev/null'], { cwd: root });
  expect(JSON.parse(stdout.trim())).toMatchObject({ level: 'info', msg: 'forced', jobId: 'j-3' });
});

test('a failed attempt logs its attempt, duration, error code and message; the retry and the final failure too', async () => {
  const server = await servers.start({ DATABASE_URL: db.url, API_KEYS: `acme:${KEY}`, RETRY_BACKOFF_MS: '10' });
  const { createJob } = await data(
    server.url,
    CreateJobDocument,
    { input: { kind: 'fail', input: { message: 'the printer is on fire' }, maxAttempts: 2 } },
    AUTH,
  );
  const failed = await untilLogged(server, createJob.id, 'job failed');
  const retried = server.logs.find((line) => line.jobId === createJob.id && line.msg === 'job queued for another attempt');
  expect(retried).toMatchObject({
    level: 'info',
    kind: 'fail',
    attempt: 1,
    durationMs: expect.any(Number),
    errorCode: 'JOB_FAILED',
    errorMessage: 'the printer is on fire',
    runAt: expect.any(String),
  });
  expect(failed).toMatchObject({
    level: 'info',
    kind: 'fail',
    attempt: 2,
    durationMs: expect.any(Number),
    errorCode: 'JOB_FAILED',
    errorMessage: 'the printer is on fire',
  });
  // A long message (a handler's own) is cut in the log, so that the event stays one line of reasonable length.
  const long = await data(server.url, CreateJobDocument, { input: { kind: 'fail', input: { message: 'x'.repeat(5000) } } }, AUTH);
  const cut = await untilLogged(server, long.createJob.id, 'job failed');
  expect(cut.errorMessage).toBe(`${'x'.repeat(1000)}… (5000 characters)`);
});

test('LOG_FORMAT=pretty off a terminal: a job is three lines, one per event, each with its fields', async () => {
  const child = spawn(process.execPath, [path.join(root, 'src/main.ts')], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: db.url,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_FORMAT: 'pretty',
      POLL_INTERVAL_MS: '200',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const url = await waitFor('the listening line', async () => /listening .*"url":"(http:\/\/[^"]+)\/graphql"/.exec(stderr)?.[1]);
    const { createJob } = await data(url, CreateJobDocument, { input: { kind: 'echo', input: { n: 1 } } });
    await waitFor('job completed', async () => stderr.includes('job completed') || undefined);
    const ofJob = stderr.split('\n').filter((line) => line.includes(createJob.id));
    expect(ofJob).toHaveLength(3);
    expect(ofJob[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: job created \{.*"kind":"echo"/);
    expect(ofJob[1]).toMatch(/INFO: job started \{.*"attempt":1/);
    expect(ofJob[2]).toMatch(/INFO: job completed \{.*"attempt":1,"durationMs":[\d.]+\}$/);
    expect(stderr).not.toContain('"level":"info"');
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
});
