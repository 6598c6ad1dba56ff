// One parser for every command: `--key value`, `--key=value`, `--flag` / `--no-flag`, positionals, `--help`, and
// (for commands that take one) `--config file.yaml` whose keys the flags override. Values are converted by the
// command's option table (src/options/fields.ts), so `--samples abc` or `--top-p 7` is an error naming the flag,
// and a YAML value that is wrong names the file, its line and the key. A repeated flag replaces the earlier
// value, except for repeatable list options, which collect every value.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isScalar } from 'yaml';
import { fsReason } from '../io/fs-errors.js';
import { type FieldTable, type Locate, flagName, nearNames } from './fields.js';

import { UsageError } from './command.js';

/** A config file's mapping, with the line each top-level key is on. */
interface ConfigFile {
  path: string;
  values: Record<string, unknown>;
  lines: Map<string, number>;
}

/** Reads a YAML (or JSON) config file; errors name the file (and the line). */
function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read config ${path}: ${fsReason(e)}`);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = lc.linePos(e.pos[0]).line;
    throw new UsageError(`${path}:${line}: ${e.message.split('\n')[0]}`);
  }
  const lines = new Map<string, number>();
  if (doc.contents === null) return { path, values: {}, lines };
  if (!isMap(doc.contents)) throw new UsageError(`${path}: a config file must hold a mapping of option: value`);
  for (const item of doc.contents.items) {
    const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
    const off = (item.key as { range?: [number, number, number] } | null)?.range?.[0];
    if (off !== undefined) lines.set(k, lc.linePos(off).line);
  }
  const values = doc.toJS() as Record<string, unknown>;
  return { path, values, lines };
}

interface ParsedArgs {
  /** the flags as given, converted to the table's keys (strings, or string lists for repeatable options) */
  flags: Record<string, unknown>;
  positionals: string[];
  config: ConfigFile | null;
  help: boolean;
}

/** Finds the table key a flag names (`--max-new-tokens` and `--max_new_tokens` are the same option). */
function keyOf(flag: string, table: FieldTable): string | null {
  const k = flag.replace(/-/g, '_');
  return k in table ? k : null;
}

/**
 * Splits argv into flags (by the option table), positionals, `--config` and `--help`. Unknown flags are errors
 * with a "did you mean".
 */
export function splitArgs(argv: readonly string[], table: FieldTable, o: { config?: boolean; style?: 'snake' | 'kebab'; refused?: Readonly<Record<string, string>> } = {}): ParsedArgs {
  const flags: Record<string, unknown> = {};
  const positionals: string[] = [];
  let config: ConfigFile | null = null;
  let help = false;
  const style = o.style ?? 'kebab';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '--') {
      if (a.startsWith('-') && a.length > 1 && !/^-\d|^-\./.test(a)) throw new UsageError(`unknown option '${a}' (options are written --name)`);
      positionals.push(a);
      continue;
    }
    let name = a.slice(2),
      value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (name === 'config' && o.config) {
      const path = value ?? argv[++i];
      if (path === undefined || path.startsWith('--')) throw new UsageError('--config needs a file path');
      config = readConfigFile(path);
      continue;
    }
    let key = keyOf(name, table);
    let negated = false;
    if (key === null && name.startsWith('no-')) {
      const k = keyOf(name.slice(3), table);
      if (k !== null && table[k]!.kind === 'boolean') {
        key = k;
        negated = true;
      }
    }
    if (key === null) {
      const why = o.refused?.[name.replace(/-/g, '_')];
      if (why) throw new UsageError(`--${name}: ${why}`);
      const near = nearNames(
        name.replace(/-/g, '_'),
        Object.keys(table).filter((k) => table[k]!.cli !== false),
      ).map((k) => flagName(k, style));
      throw new UsageError(`unknown option --${name}${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`);
    }
    const fl = table[key]!;
    if (fl.cli === false) throw new UsageError(`--${name} cannot be given on the command line (it is a library option)`);
    if (negated) {
      if (value !== undefined) throw new UsageError(`--${name} takes no value`);
      flags[key] = false;
      continue;
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (fl.kind === 'boolean') {
        // a boolean takes an explicit true/false only when one follows
        if (next === 'true' || next === 'false') value = argv[++i]!;
        else value = 'true';
      } else if (fl.kind === 'path-or-bool' && (next === undefined || next.startsWith('--'))) {
        value = 'true';
      } else {
        if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`${flagName(key, style)} needs a value`);
        value = argv[++i]!;
      }
    }
    if (fl.kind === 'list' && fl.repeatable) flags[key] = [...((flags[key] as string[] | undefined) ?? []), value];
    else flags[key] = value; // a repeated flag: the last one wins
  }
  return { flags, positionals, config, help };
}

/** Where an option's value came from: the flag, or the config file's line. */
export function locator(p: ParsedArgs, style: 'snake' | 'kebab'): Locate {
  return (k: string) => {
    if (k in p.flags) return flagName(k, style);
    const line = p.config?.lines.get(k);
    if (p.config) return `${p.config.path}${line ? `:${line}` : ''}: ${k}`;
    return flagName(k, style);
  };
}

/** The config file's values overridden by the flags. */
export function mergedValues(p: ParsedArgs): Record<string, unknown> {
  return { ...(p.config?.values ?? {}), ...p.flags };
}
