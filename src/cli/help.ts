import { settingList } from '../config.ts';

/**
 * `jobql --help`: the commands, their flags, and every setting, generated from the configuration model (the
 * same list the README's configuration table documents), so a new setting cannot be missing here.
 */
export function helpText(): string {
  const settings = settingList().filter((entry) => entry.option !== 'none');
  const width = Math.max(...settings.map((entry) => entry.variable.length));
  const rows = settings.map((entry) => `  ${entry.variable.padEnd(width)}  ${entry.help} (option: ${entry.optionName})`);
  return [
    'Usage: jobql <command> [flags]',
    '',
    'Commands:',
    '  start      run the API and the runner (migrations run first)',
    '    --kinds DIR      load every .ts, .js and .mjs module in DIR and run the kinds they export (defineKind)',
    '    --worker-only    run jobs and open no HTTP port (the same as WORKER_ONLY=true)',
    '    --demo-kinds     also run the built-in demo kinds: echo, sleep, fail, flaky',
    '  migrate    apply the database migrations and exit',
    '  help       show this text (also --help, -h)',
    '',
    'Settings, from the environment (startJobql takes each as the option named in parentheses):',
    ...rows,
    '',
    'Without DATABASE_URL an embedded PostgreSQL starts, its data in EMBEDDED_POSTGRES_DIR.',
    '',
  ].join('\n');
}
