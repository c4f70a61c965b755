#!/usr/bin/env node
import { runCli } from './cli/run-cli.ts';

// The `jobql` command (package.json "bin"): `jobql start --kinds ./kinds`, `jobql migrate`, `jobql --help`.
await runCli(process.argv.slice(2));
