// Every command of the `alignkit` command line, in the order `alignkit --help` lists them. Each layer declares
// its own commands next to its code; this table only gathers them.
import { BENCH_COMMANDS } from '../bench/commands.js';
import { CAI_COMMANDS } from '../cai/commands.js';
import { COMPARE_COMMAND } from '../compare/commands.js';
import { core } from '../engine/native.js';
import { LABEL_COMMANDS } from '../label/commands.js';
import type { Command } from '../options/command.js';
import { RLHF_COMMAND } from '../rlhf/commands.js';
import { SERVE_COMMANDS } from '../serve/commands.js';
import { TRAINER_COMMANDS } from '../train/commands.js';
import { EVAL_COMMAND } from './eval.js';
import { EXPORT_COMMAND } from './export.js';
import { GENERATE_COMMAND } from './generate.js';
import { QUICKSTART_COMMAND } from './quickstart.js';

const INFO_COMMAND: Command = {
  name: 'info',
  summary: 'the native engine: instruction set, threads, Node version',
  options: {},
  async run(ctx) {
    ctx.out.write(JSON.stringify({ isa: core.isa(), threads: core.getThreads(), node: process.version }) + '\n');
    return 0;
  },
};

export const COMMANDS: readonly Command[] = [
  COMPARE_COMMAND,
  QUICKSTART_COMMAND,
  ...TRAINER_COMMANDS,
  RLHF_COMMAND,
  GENERATE_COMMAND,
  EVAL_COMMAND,
  ...CAI_COMMANDS,
  ...LABEL_COMMANDS,
  ...SERVE_COMMANDS,
  EXPORT_COMMAND,
  ...BENCH_COMMANDS,
  INFO_COMMAND,
];
