// Runs a command line against the command table: picks the command (one or two words), prints its --help, parses
// and checks its options with the one parser, runs it, and turns errors into exit codes (2 for usage and
// option errors, with a pointer to --help; 1 for failures; 130 after an interrupted training run).
import { type Command, type CommandIO, UsageError } from '../options/command.js';
import { OptionError, type FieldTable, flagName, formatHelp, resolveOptions } from '../options/fields.js';
import { locator, mergedValues, splitArgs } from '../options/argv.js';
import { TrainingInterruptedError } from '../train/loop.js';

const PROGRAM = 'alignkit';

/** The command a command line names (the longest match of its first two words) and the remaining arguments. */
function findCommand(table: readonly Command[], argv: readonly string[]): { cmd: Command | null; rest: string[]; group: string | null } {
  const two = argv.length >= 2 ? `${argv[0]} ${argv[1]}` : null;
  const c2 = two ? table.find((c) => c.name === two) : undefined;
  if (c2) return { cmd: c2, rest: argv.slice(2), group: null };
  const c1 = table.find((c) => c.name === argv[0]);
  if (c1) return { cmd: c1, rest: argv.slice(1), group: null };
  const isGroup = argv[0] !== undefined && table.some((c) => c.name.startsWith(`${argv[0]} `));
  return { cmd: null, rest: argv.slice(1), group: isGroup ? argv[0]! : null };
}

/** `alignkit <command> --help`. */
export function helpText(cmd: Command): string {
  const style = cmd.style ?? 'kebab';
  const usage = `usage: ${PROGRAM} ${cmd.name}${cmd.args ? ` ${cmd.args}` : ''}${cmd.config ? ' [--config FILE.yaml]' : ''}${Object.keys(cmd.options).length ? ' [options]' : ''}`;
  const parts = [`${PROGRAM} ${cmd.name} — ${cmd.summary}`, '', usage];
  if (cmd.config) parts.push('', `  --config FILE.yaml       options from a YAML (or JSON) file; flags given after it override its keys`);
  const groups = cmd.groups ?? [{ title: 'options', fields: cmd.options }];
  for (const g of groups) {
    const shown = Object.fromEntries(Object.entries(g.fields).filter(([, f]) => f.cli !== false)) as FieldTable;
    if (!Object.keys(shown).length) continue;
    parts.push('', `${g.title}:`, formatHelp(shown, style));
  }
  parts.push('', `  --help, -h               this help`);
  if (cmd.details) parts.push('', cmd.details.trimEnd());
  return parts.join('\n') + '\n';
}

/** `alignkit` with no command (or `alignkit --help`): every command with its summary. */
function usageText(table: readonly Command[], group: string | null = null): string {
  const cmds = group ? table.filter((c) => c.name.startsWith(`${group} `)) : table;
  const w = Math.max(...cmds.map((c) => c.name.length)) + 2;
  const lines = cmds.map((c) => `  ${PROGRAM} ${c.name.padEnd(w)}${c.summary}`);
  const head = group ? `${PROGRAM} ${group} — subcommands` : `${PROGRAM} — align language models from Node.js`;
  return `${head}\n\nusage: ${PROGRAM} <command> [options]    (${PROGRAM} <command> --help for its options)\n\n${lines.join('\n')}\n\nenvironment: ALIGNKIT_THREADS (thread pool size), ALIGNKIT_PORTABLE=1 (skip the SIMD kernels)\n`;
}

/** Parses argv for `cmd` and runs it. */
async function execute(cmd: Command, argv: readonly string[], io: CommandIO): Promise<number> {
  const style = cmd.style ?? 'kebab';
  const p = splitArgs(argv, cmd.options, { config: cmd.config, style, refused: cmd.refused });
  if (p.help) {
    io.out.write(helpText(cmd));
    return 0;
  }
  const [min, max] = cmd.positionals ?? [0, 0];
  if (p.positionals.length < min || p.positionals.length > max) {
    const what = max === 0 ? 'takes no positional arguments' : `takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'} (${cmd.args ?? ''})`;
    throw new UsageError(`'${cmd.name}' ${what}${p.positionals.length ? `, got ${p.positionals.map((x) => JSON.stringify(x)).join(' ')}` : ''}`);
  }
  const given = mergedValues(p);
  const locate = locator(p, style);
  let values: Record<string, unknown>;
  try {
    values = resolveOptions(cmd.options, given, p.config?.path ?? 'command line', { locate, refused: cmd.refused });
  } catch (e) {
    if (e instanceof OptionError) throw new UsageError(e.message.replace(/^command line: (\w+) is required/, (_m, k: string) => `${flagName(k, style)} is required`));
    throw e;
  }
  if (io.checkOnly) return 0;
  const code = await cmd.run({ ...io, values, given, positionals: p.positionals, locate });
  return typeof code === 'number' ? code : 0;
}

/** Runs a whole command line; returns the exit status (errors are written to io.err). */
export async function runCli(table: readonly Command[], argv: readonly string[], io: CommandIO): Promise<number> {
  const { cmd, rest, group } = findCommand(table, argv);
  if (!cmd) {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      io.out.write(usageText(table));
      return argv.length === 0 ? 1 : 0;
    }
    if (group) {
      const sub = rest[0];
      if (sub === undefined || sub === '--help' || sub === '-h') {
        io.out.write(usageText(table, group));
        return sub === undefined ? 1 : 0;
      }
      io.err.write(`${PROGRAM}: unknown subcommand '${group} ${sub}'\n\n${usageText(table, group)}`);
      return 2;
    }
    io.err.write(`${PROGRAM}: unknown command '${argv[0]}'\n\n${usageText(table)}`);
    return 2;
  }
  try {
    return await execute(cmd, rest, io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof OptionError) {
      io.err.write(`${PROGRAM} ${cmd.name}: ${e.message}\n(see ${PROGRAM} ${cmd.name} --help)\n`);
      return 2;
    }
    if (e instanceof TrainingInterruptedError) {
      io.err.write(`${e.message}\n`);
      return 130;
    }
    throw e;
  }
}
