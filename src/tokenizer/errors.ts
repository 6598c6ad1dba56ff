// Errors raised by the tokenizer package, and small typed readers for tokenizer.json fields that name the
// offending field (e.g. `tokenizer.json: model.merges[3]: expected ...`) when the file is malformed.

/** Any error about a tokenizer: malformed files, unsupported features, bad arguments. */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

/** Error thrown while reading tokenizer.json (or a config file); `field` is the JSON path. */
export class TokenizerFormatError extends TokenizerError {
  readonly field: string;
  constructor(field: string, message: string, file = 'tokenizer.json') {
    super(`${file}: ${field}: ${message}`);
    this.name = 'TokenizerFormatError';
    this.field = field;
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/** Reads typed fields of a JSON object, reporting the full field path on error. */
export class Reader {
  constructor(
    readonly obj: JsonObject,
    readonly path: string,
  ) {}

  static of(v: unknown, path: string): Reader {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TokenizerFormatError(path, `expected an object, got ${describe(v)}`);
    return new Reader(v as JsonObject, path);
  }

  field(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  has(name: string): boolean {
    return this.obj[name] !== undefined && this.obj[name] !== null;
  }

  raw(name: string): Json | undefined {
    return this.obj[name];
  }

  fail(name: string, message: string): never {
    throw new TokenizerFormatError(this.field(name), message);
  }

  type(): string {
    return this.string('type');
  }

  string(name: string): string;
  string(name: string, dflt: string): string;
  string(name: string, dflt: null): string | null;
  string(name: string, dflt?: string | null): string | null {
    const v = this.obj[name];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      this.fail(name, 'missing (expected a string)');
    }
    if (typeof v !== 'string') this.fail(name, `expected a string, got ${describe(v)}`);
    return v;
  }

  bool(name: string, dflt?: boolean): boolean {
    const v = this.obj[name];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      this.fail(name, 'missing (expected true or false)');
    }
    if (typeof v !== 'boolean') this.fail(name, `expected true or false, got ${describe(v)}`);
    return v;
  }

  number(name: string, dflt?: number | null): number | null {
    const v = this.obj[name];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      this.fail(name, 'missing (expected a number)');
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(name, `expected a number, got ${describe(v)}`);
    return v;
  }

  int(name: string, dflt?: number): number {
    const v = this.number(name, dflt);
    if (v === null || !Number.isInteger(v) || v < 0) this.fail(name, `expected a non-negative integer, got ${describe(v)}`);
    return v;
  }

  /** A single character (one code point), as Rust's `char` fields. */
  char(name: string, dflt?: string): string {
    const s = this.string(name, dflt as string);
    if ([...s].length !== 1) this.fail(name, `expected a single character, got ${describe(s)}`);
    return s;
  }

  array(name: string): Json[] {
    const v = this.obj[name];
    if (!Array.isArray(v)) this.fail(name, v === undefined ? 'missing (expected an array)' : `expected an array, got ${describe(v)}`);
    return v;
  }

  object(name: string): Reader {
    const v = this.obj[name];
    if (v === undefined) this.fail(name, 'missing (expected an object)');
    return Reader.of(v, this.field(name));
  }
}
