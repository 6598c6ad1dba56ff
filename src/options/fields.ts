// Option tables: every configurable thing in alignkit (a trainer's config, a command's flags) is declared once
// as a table of fields — name, type, default, range, help — and the validation, the command line's --help and
// the options tables in docs/ are all derived from that table. A resolved table is a plain typed object.

/** Where a value came from, for error messages: `dpo.yaml:7`, `--beta`, or `DPOConfig`. */
export type Locate = (key: string) => string;

export interface Field<V = unknown> {
  readonly kind: 'number' | 'integer' | 'string' | 'boolean' | 'choice' | 'list' | 'path-or-bool' | 'value';
  readonly default: V;
  readonly help: string;
  readonly min?: number;
  readonly max?: number;
  readonly exclusiveMin?: boolean;
  readonly exclusiveMax?: boolean;
  readonly choices?: readonly string[];
  readonly nullable?: boolean;
  /** must be given (its default is only a placeholder) */
  readonly required?: boolean;
  /** a `list`: each repetition of the flag adds an item (else a repeated flag replaces the value) */
  readonly repeatable?: boolean;
  /** false: a library-only option (e.g. a function), not offered on the command line */
  readonly cli?: boolean;
  /** for `value` fields: checks and converts a value (throws a message without the location) */
  readonly parse?: (v: unknown) => V;
  /** what a value looks like in --help (NUMBER, DIR, FILE, ...) */
  readonly metavar?: string;
}

export type FieldTable = Record<string, Field>;
export type OptionsOf<T extends FieldTable> = { -readonly [K in keyof T]: T[K] extends Field<infer V> ? V : never };

interface NumOpts {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  metavar?: string;
  required?: boolean;
}

function num(kind: 'number' | 'integer') {
  function make(def: number, help: string, o?: NumOpts & { nullable?: false }): Field<number>;
  function make(def: number | null, help: string, o: NumOpts & { nullable: true }): Field<number | null>;
  function make(def: number | null, help: string, o: NumOpts & { nullable?: boolean } = {}): Field<number | null> {
    return { kind, default: def, help, ...o };
  }
  return make;
}

function str(def: string, help: string, o?: { nullable?: false; required?: boolean; metavar?: string }): Field<string>;
function str(def: string | null, help: string, o: { nullable: true; required?: boolean; metavar?: string }): Field<string | null>;
function str(def: string | null, help: string, o: { nullable?: boolean; required?: boolean; metavar?: string } = {}): Field<string | null> {
  return { kind: 'string', default: def, help, ...o };
}

function bool(def: boolean, help: string): Field<boolean>;
function bool(def: boolean | null, help: string, o: { nullable: true }): Field<boolean | null>;
function bool(def: boolean | null, help: string, o: { nullable?: boolean } = {}): Field<boolean | null> {
  return { kind: 'boolean', default: def, help, ...o };
}

function choice<const C extends readonly string[]>(choices: C, def: C[number], help: string): Field<C[number]>;
function choice<const C extends readonly string[]>(choices: C, def: C[number] | null, help: string, o: { nullable: true }): Field<C[number] | null>;
function choice<const C extends readonly string[]>(choices: C, def: C[number] | null, help: string, o: { nullable?: boolean } = {}): Field<C[number] | null> {
  return { kind: 'choice', choices, default: def, help, ...o };
}

function list(def: string[], help: string, o?: { nullable?: false; repeatable?: boolean; metavar?: string }): Field<string[]>;
function list(def: string[] | null, help: string, o: { nullable: true; repeatable?: boolean; metavar?: string }): Field<string[] | null>;
function list(def: string[] | null, help: string, o: { nullable?: boolean; repeatable?: boolean; metavar?: string } = {}): Field<string[] | null> {
  return { kind: 'list', default: def, help, ...o };
}

/** Field builders: `f.number(5e-5, 'learning rate', { min: 0 })`, `f.choice(['a', 'b'], 'a', '...')`, ... */
export const f = {
  number: num('number'),
  integer: num('integer'),
  string: str,
  boolean: bool,
  choice,
  /** a list of strings: YAML/JSON lists, or comma-separated on the command line */
  list,
  /** true / false or a path (transformers' resume_from_checkpoint) */
  pathOrBool(def: boolean | string, help: string): Field<boolean | string> {
    return { kind: 'path-or-bool', default: def, help, metavar: 'true|PATH' };
  },
  /** anything a `parse` function accepts (objects, functions, mixtures) */
  value<V>(def: V, help: string, parse: (v: unknown) => V, o: { cli?: boolean; metavar?: string; nullable?: boolean } = {}): Field<V> {
    return { kind: 'value', default: def, help, parse, ...o };
  },
};

export class OptionError extends Error {
  override name = 'OptionError';
}

const NULL_WORDS = new Set(['null', 'None', '~']);

function describe(fl: Field): string {
  const range = rangeText(fl);
  switch (fl.kind) {
    case 'integer':
      return `an integer${range ? ` ${range}` : ''}${fl.nullable ? ' (or null)' : ''}`;
    case 'number':
      return `a number${range ? ` ${range}` : ''}${fl.nullable ? ' (or null)' : ''}`;
    case 'boolean':
      return `true or false${fl.nullable ? ' (or null)' : ''}`;
    case 'choice':
      return `one of ${fl.choices!.join(', ')}${fl.nullable ? ' (or null)' : ''}`;
    case 'string':
      return `a string${fl.nullable ? ' (or null)' : ''}`;
    case 'list':
      return `a list of strings${fl.nullable ? ' (or null)' : ''}`;
    case 'path-or-bool':
      return 'true, false or a checkpoint path';
    default:
      return 'a valid value';
  }
}

/** `>= 0`, `in (0, 1]`, ... for a numeric field. */
function rangeText(fl: Pick<Field, 'min' | 'max' | 'exclusiveMin' | 'exclusiveMax'>): string {
  const { min, max } = fl;
  if (min !== undefined && max !== undefined) return `in ${fl.exclusiveMin ? '(' : '['}${min}, ${max}${fl.exclusiveMax ? ')' : ']'}`;
  if (min !== undefined) return `${fl.exclusiveMin ? '>' : '>='} ${min}`;
  if (max !== undefined) return `${fl.exclusiveMax ? '<' : '<='} ${max}`;
  return '';
}

function fmt(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s;
}

/**
 * Converts and checks one value for a field (strings from the command line become numbers / booleans / null /
 * lists by the field's type). Throws an OptionError naming `where`.
 */
function parseField(fl: Field, v: unknown, where: string): unknown {
  const bad = (): never => {
    throw new OptionError(`${where}: must be ${describe(fl)}, got ${fmt(v)}`);
  };
  // null, or a word for it on the command line (for an option that may be null, and is not one of its choices)
  const nullWord = typeof v === 'string' && NULL_WORDS.has(v) && fl.nullable === true && !(fl.choices ?? []).includes(v);
  if (v === null || v === undefined || nullWord) {
    if (fl.nullable) return null;
    if (v === undefined) return fl.default;
    bad();
  }
  switch (fl.kind) {
    case 'number':
    case 'integer': {
      let x = v;
      if (typeof x === 'string' && x.trim() !== '') x = Number(x);
      if (typeof x !== 'number' || !Number.isFinite(x)) return bad();
      if (fl.kind === 'integer' && !Number.isInteger(x)) return bad();
      if (fl.min !== undefined && (fl.exclusiveMin ? x <= fl.min : x < fl.min)) return bad();
      if (fl.max !== undefined && (fl.exclusiveMax ? x >= fl.max : x > fl.max)) return bad();
      return x;
    }
    case 'boolean':
      if (v === true || v === 'true') return true;
      if (v === false || v === 'false') return false;
      return bad();
    case 'choice':
      if (typeof v === 'string' && fl.choices!.includes(v)) return v;
      return bad();
    case 'string':
      if (typeof v === 'string') {
        if (fl.nullable && v === '') return null;
        return v;
      }
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      return bad();
    case 'list': {
      const items =
        typeof v === 'string'
          ? v
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : v;
      if (!Array.isArray(items) || !items.every((s) => typeof s === 'string')) return bad();
      return items;
    }
    case 'path-or-bool':
      if (v === true || v === 'true') return true;
      if (v === false || v === 'false' || v === '') return false;
      if (typeof v === 'string') return v;
      return bad();
    case 'value':
      try {
        return fl.parse!(v);
      } catch (e) {
        throw new OptionError(`${where}: ${(e as Error).message}`);
      }
  }
}

/** Edit distance (for "did you mean"). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** Up to three known names close to `name`. */
export function nearNames(name: string, known: readonly string[]): string[] {
  return known
    .map((k) => ({ k, d: k.includes(name) || name.includes(k) ? 1 : distance(name, k) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 4)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => x.k);
}

export interface ResolveOptions {
  /** names the place of a key in errors (default: `source: key`) */
  locate?: Locate;
  /** keys that name options of other tools, refused with this explanation each */
  refused?: Readonly<Record<string, string>>;
}

/**
 * Fills a table's defaults and checks every given key: an unknown key, a wrong type, a value out of range or a
 * missing required option is an OptionError naming where it came from (so a typo never trains silently on a
 * default). `source` names the whole config (a YAML path, a class name).
 */
export function resolveOptions<T extends FieldTable>(table: T, given: Readonly<Record<string, unknown>>, source: string, o: ResolveOptions = {}): OptionsOf<T> {
  const locate = o.locate ?? ((k: string) => `${source}: ${k}`);
  const out: Record<string, unknown> = {};
  for (const [k, fl] of Object.entries(table)) out[k] = Array.isArray(fl.default) ? [...fl.default] : fl.default;
  for (const [k, v] of Object.entries(given)) {
    if (v === undefined) continue;
    const fl = table[k];
    if (!fl) {
      const why = o.refused?.[k];
      if (why) throw new OptionError(`${locate(k)}: ${why}`);
      const near = nearNames(k, Object.keys(table));
      throw new OptionError(`${locate(k)}: unknown option${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`);
    }
    out[k] = parseField(fl, v, locate(k));
  }
  for (const [k, fl] of Object.entries(table)) {
    const v = out[k];
    if (fl.required && (v === null || v === undefined || v === '')) throw new OptionError(`${source}: ${k} is required (${fl.help})`);
  }
  return out as OptionsOf<T>;
}

/** The default value as --help and docs show it. */
function defaultText(fl: Field): string {
  const d = fl.default;
  if (fl.required) return '(required)';
  if (d === null || d === undefined) return 'null';
  if (typeof d === 'function') return '-';
  if (Array.isArray(d)) return d.length ? d.join(',') : '[]';
  if (typeof d === 'string') return d === '' ? "''" : d;
  if (typeof d === 'number' && d !== 0 && (Math.abs(d) < 1e-3 || Math.abs(d) >= 1e6)) return d.toExponential().replace('e+', 'e');
  return String(d);
}

function metavar(fl: Field): string {
  if (fl.metavar) return fl.metavar;
  switch (fl.kind) {
    case 'boolean':
      return '';
    case 'number':
      return 'X';
    case 'integer':
      return 'N';
    case 'choice':
      return fl.choices!.join('|');
    case 'list':
      return fl.repeatable ? 'STR' : 'A,B';
    default:
      return 'STR';
  }
}

/** A flag as the command line spells it: snake_case (TRL's names) or kebab-case. */
export function flagName(key: string, style: 'snake' | 'kebab'): string {
  return `--${style === 'kebab' ? key.replace(/_/g, '-') : key}`;
}

/** The `--help` lines of a table: flag, value, help, default and range. */
export function formatHelp(table: FieldTable, style: 'snake' | 'kebab' = 'kebab', width = 34): string {
  const lines: string[] = [];
  for (const [k, fl] of Object.entries(table)) {
    if (fl.cli === false) continue;
    const mv = metavar(fl);
    const left = `  ${flagName(k, style)}${mv ? ` ${mv}` : ''}`;
    const extra = [fl.required ? 'required' : `default ${defaultText(fl)}`];
    const r = fl.kind === 'number' || fl.kind === 'integer' ? rangeText(fl) : '';
    if (r) extra.push(r);
    if (fl.repeatable) extra.push('repeatable');
    const text = `${fl.help} (${extra.join('; ')})`;
    lines.push(left.length + 1 >= width ? `${left}\n${' '.repeat(width)}${text}` : `${left.padEnd(width)}${text}`);
  }
  return lines.join('\n');
}

/** A Markdown table of a table's options (docs/ pages embed these; a test keeps them current). */
export function markdownTable(table: FieldTable): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = ['| option | type | default | help |', '| --- | --- | --- | --- |'];
  for (const [k, fl] of Object.entries(table)) {
    if (fl.cli === false && fl.kind !== 'value') continue;
    let type: string = fl.kind === 'choice' ? fl.choices!.join(' | ') : fl.kind;
    const r = fl.kind === 'number' || fl.kind === 'integer' ? rangeText(fl) : '';
    if (r) type += ` ${r}`;
    if (fl.nullable) type += ' or null';
    rows.push(`| \`${k}\` | ${esc(type)} | \`${esc(defaultText(fl))}\` | ${esc(fl.help)} |`);
  }
  return rows.join('\n');
}

/** A config class in TRL's sense: a named field table with cross-field checks. */
export interface ConfigSpec<T extends FieldTable> {
  readonly name: string;
  readonly fields: T;
  /** fills defaults and checks every field, then the cross-field rules */
  resolve(given?: Readonly<Record<string, unknown>>, o?: ResolveOptions & { source?: string }): OptionsOf<T>;
}

export type ConfigOf<S> = S extends ConfigSpec<infer T> ? OptionsOf<T> : never;

/**
 * Declares a config: `export const DPOConfig = defineConfig('DPOConfig', DPO_FIELDS, check)`;
 * `DPOConfig.resolve({ beta: 0.2 })` gives a checked, fully defaulted object.
 */
export function defineConfig<T extends FieldTable>(
  name: string,
  fields: T,
  check?: (c: OptionsOf<T>, fail: (key: string, message: string) => never) => void,
  refused?: Readonly<Record<string, string>>,
): ConfigSpec<T> {
  return {
    name,
    fields,
    resolve(given = {}, o = {}) {
      const source = o.source ?? name;
      const locate = o.locate ?? ((k: string) => `${source}: ${k}`);
      const c = resolveOptions(fields, given, source, { locate, refused: { ...refused, ...o.refused } });
      check?.(c, (key, message) => {
        throw new OptionError(`${locate(key)}: ${message}`);
      });
      return c;
    },
  };
}

/** Splits a flat config into the part whose keys belong to `table` and the rest. */
export function splitByTable(given: Readonly<Record<string, unknown>>, table: FieldTable): [Record<string, unknown>, Record<string, unknown>] {
  const mine: Record<string, unknown> = {},
    rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) (k in table ? mine : rest)[k] = v;
  return [mine, rest];
}
