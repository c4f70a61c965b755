// The one place that writes logs: one JSON object per line on stderr, so stdout stays free for tools.
type Level = 'debug' | 'info' | 'warn' | 'error';
const rank: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

let threshold = rank.info;

export function setLogLevel(level: Level | 'silent'): void {
  threshold = rank[level];
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (rank[level] < threshold) return;
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...fields };
  if (line.err instanceof Error) line.err = { message: line.err.message, stack: line.err.stack };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

export const logger = {
  debug: (msg: string, fields?: Record<string, unknown>) => write('debug', msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => write('info', msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => write('warn', msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => write('error', msg, fields),
};
