import { runCli } from './cli/run-cli.ts';

// `npm start` in the repository: the `jobql start` command with the built-in demo kinds. Flags after
// `npm start --` (--worker-only, --kinds DIR) pass through.
await runCli(['start', '--demo-kinds', ...process.argv.slice(2)]);
