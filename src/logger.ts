import { AsyncLocalStorage } from 'node:async_hooks';
import { pino } from 'pino';
import pretty from 'pino-pretty';

// The one place that writes logs: pino, one JSON object per line on stderr (stdout stays free for tools),
// with the level as its name and the time in ISO 8601, so `jq` and log shippers read it as it is. On a
// terminal (or with LOG_FORMAT=pretty) the same events are printed as one readable line each instead.
//
// What goes in: messages and ids (jobId, workerId, requestId). What stays out: API keys and the database
// password are never passed here; job inputs and results only at debug; errors are logged by type, message,
// code, stack and cause only, never their other properties (a database error can carry the query's values).

type Level = 'debug' | 'info' | 'warn' | 'error';

/** Fields that every line logged inside `withLogContext` carries (the request id of an HTTP request). */
const context = new AsyncLocalStorage<Record<string, unknown>>();

export function withLogContext<T>(fields: Record<string, unknown>, run: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, run);
}

type LoggedError = { type: string; message: string; code?: string; stack?: string; cause?: LoggedError };

function serializeError(error: unknown, depth = 0): LoggedError | unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  return {
    type: error.name,
    message: error.message,
    ...(typeof code === 'string' ? { code } : {}),
    stack: error.stack,
    ...(error.cause !== undefined && depth < 3 ? { cause: serializeError(error.cause, depth + 1) } : {}),
  };
}

/** `json`: one JSON object per line; `pretty`: one readable line per event; `auto`: pretty on a terminal, else json. */
export type LogFormat = 'json' | 'pretty' | 'auto';

export function resolveLogFormat(format: LogFormat, isTTY: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format;
}

// Written through process.stderr, not pino's own synchronous fd writer: when stderr is a pipe whose reader is
// slow (a log shipper), that writer sleeps the whole process 100 ms at a time until the pipe drains, which
// would stall the API and the runner; process.stderr queues instead. A line logged just before process.exit
// (a startup failure) is still written: Node flushes stdio pipes and files synchronously on Linux.
// Pretty lines are one per event (singleLine): the fields follow the message as compact JSON, so a job's
// created/started/completed are three screen lines, not fifteen. Only an error's stack takes more.
function destinationFor(format: 'json' | 'pretty') {
  if (format === 'json') return process.stderr;
  return pretty({
    destination: process.stderr,
    colorize: Boolean(process.stderr.isTTY),
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
}

function createRoot(format: 'json' | 'pretty', level: string) {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
      // A copy: pino merges each line's own fields into the object mixin returns, so returning the store
      // itself would make every later line of the request carry the fields of the lines before it.
      mixin: () => ({ ...context.getStore() }),
    },
    destinationFor(format),
  );
}

let root = createRoot(resolveLogFormat('auto', Boolean(process.stderr.isTTY)), 'info');

/** Chooses the format (LOG_FORMAT); lines logged before this call used the default (`auto`). */
export function setLogFormat(format: LogFormat): void {
  root = createRoot(resolveLogFormat(format, Boolean(process.stderr.isTTY)), root.level);
}

/** A text that a client or a handler chose (an error message), cut so that one event stays one short line. */
export function clipForLog(text: string, max = 1000): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

export function setLogLevel(level: Level | 'silent'): void {
  root.level = level;
}

const write = (level: Level) => (msg: string, fields?: Record<string, unknown>) => {
  if (fields) root[level](fields, msg);
  else root[level](msg);
};

export const logger = {
  debug: write('debug'),
  info: write('info'),
  warn: write('warn'),
  error: write('error'),
};
