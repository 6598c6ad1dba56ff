// Runs alignkit's command line in-process (the same table and dispatcher as the `alignkit` binary) with the
// test's own output streams.
import { COMMANDS } from '../../src/cli/commands.js';
import { runCli } from '../../src/cli/dispatch.js';

export function cli(argv: readonly string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream = out): Promise<number> {
  return runCli(COMMANDS, argv, { out, err });
}

/** `alignkit label <argv>`. */
export function labelMain(argv: readonly string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream = out): Promise<number> {
  return cli(['label', ...argv], out, err);
}
