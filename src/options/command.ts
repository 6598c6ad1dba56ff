// A command of the `alignkit` command line, declared as data: its name (one or two words: `dpo`, `label serve`),
// a summary, its option table and what it does with the parsed options. The layers that own a command (train,
// label, serve, …) declare it next to their code; src/cli/commands.ts lists them all and src/cli/main.ts runs
// them through one parser (src/options/argv.ts), so every command has `--help`, checked values and the same
// error format.
import type { FieldTable, Locate } from './fields.js';

/** A mistake in how a command was called (exit status 2, with a pointer to --help). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Where a command writes (tests pass their own streams). */
export interface CommandIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** parse and check the command line (options, config file, positionals) but do not run it */
  checkOnly?: boolean;
}

export interface CommandContext extends CommandIO {
  /** the options, converted and checked against the command's table (defaults filled) */
  values: Record<string, unknown>;
  /** only the options that were given (config file and flags), before defaults */
  given: Record<string, unknown>;
  positionals: string[];
  /** names where an option's value came from: `--beta` or `dpo.yaml:7: beta` */
  locate: Locate;
}

export interface OptionGroup {
  title: string;
  fields: FieldTable;
}

export interface Command {
  /** one or two words */
  name: string;
  summary: string;
  /** the option table; `groups` (when given) only orders --help */
  options: FieldTable;
  groups?: OptionGroup[];
  /** how flags are spelt in --help: TRL's snake_case (trainers) or kebab-case; both are accepted */
  style?: 'snake' | 'kebab';
  /** accepts `--config FILE.yaml` (flags override its keys) */
  config?: boolean;
  /** the positional arguments in the usage line, e.g. 'NAME' */
  args?: string;
  /** how many positional arguments it takes */
  positionals?: [min: number, max: number];
  /** option names of other tools that this command refuses with a reason (TRL options alignkit lacks) */
  refused?: Readonly<Record<string, string>>;
  /** more text for --help (examples, file formats) */
  details?: string;
  run(ctx: CommandContext): Promise<number | void>;
}
