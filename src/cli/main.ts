#!/usr/bin/env node
// The `alignkit` command line: the command table (commands.ts) run through one dispatcher (dispatch.ts).
import { COMMANDS } from './commands.js';
import { runCli } from './dispatch.js';

runCli(COMMANDS, process.argv.slice(2), { out: process.stdout, err: process.stderr }).then(
  // exit at once: a finished command leaves nothing to wait for (stdout and stderr are synchronous on pipes and files)
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`alignkit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
