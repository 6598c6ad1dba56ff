// `--config file.yaml` plus `--key value` flags → one plain config object for a trainer (flags win), with
// errors that name the file and line (YAML) or the flag.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';

/** Reads a YAML (or JSON) config file into an object; errors name the file and line. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`--config ${path}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const line = e.linePos?.[0]?.line;
      throw new Error(`${path}${line ? `:${line}` : ''}: ${e.message.split('\n')[0]}`);
    }
    throw e;
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${path}: a config file must hold a mapping of option: value`);
  return v as Record<string, unknown>;
}

function coerce(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v === 'null') return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) return Number(v);
  if (v.startsWith('[') || v.startsWith('{')) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

/**
 * Parses `--config F` and `--key value` / `--key=value` / `--flag` (true) / `--no-flag` (false). Keys may be
 * written kebab-case (--learning-rate) or snake_case; they come out snake_case. Repeating a flag makes a list.
 */
export function parseConfigArgs(argv: readonly string[]): Record<string, unknown> {
  let fromFile: Record<string, unknown> = {};
  const flags: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (options are --key value)`);
    let key = a.slice(2), value: unknown;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      value = coerce(key.slice(eq + 1));
      key = key.slice(0, eq);
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      value = coerce(argv[++i]!);
    } else if (key.startsWith('no-')) {
      key = key.slice(3);
      value = false;
    } else {
      value = true;
    }
    key = key.replace(/-/g, '_');
    if (key === 'config') {
      if (typeof value !== 'string') throw new Error('--config needs a file path');
      fromFile = readConfigFile(value);
      continue;
    }
    if (key in flags) flags[key] = Array.isArray(flags[key]) ? [...(flags[key] as unknown[]), value] : [flags[key], value];
    else flags[key] = value;
  }
  return { ...fromFile, ...flags };
}
