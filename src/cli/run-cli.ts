import { parseArgs } from 'node:util';
import { helpText } from './help.ts';
import { migrateCommand } from './migrate-command.ts';
import { startCommand } from './start-command.ts';

/** The `jobql` command line: a wrong command or flag is one line on stderr and exit code 1. */
export async function runCli(argv: readonly string[]): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`jobql: ${error instanceof Error ? error.message : String(error)} (see jobql --help)\n`);
    process.exit(1);
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? (values.help ? 'help' : undefined);
  if (values.help || command === 'help') {
    process.stdout.write(helpText());
    return;
  }
  if (command === 'migrate' && positionals.length === 1) return migrateCommand();
  if (command === 'start' && positionals.length === 1) {
    return startCommand({
      kindsDir: values.kinds ?? null,
      workerOnly: values['worker-only'] ?? false,
      demoKinds: values['demo-kinds'] ?? false,
    });
  }
  process.stderr.write(
    `jobql: ${command ? `unknown command ${JSON.stringify(positionals.join(' '))}` : 'no command given'} (see jobql --help)\n`,
  );
  process.exit(1);
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      kinds: { type: 'string' },
      'worker-only': { type: 'boolean' },
      'demo-kinds': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
