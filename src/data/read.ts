// Reading records: JSONL streamed line by line (a file is never held whole, only the current chunk and line),
// JSON arrays (read whole; each element keeps the line it starts on), and in-memory arrays. Each record comes
// with its Source (file, 1-based line); a line that is not JSON comes as an `error` so that the caller decides
// whether to throw or to count it (skipInvalid).

import { createReadStream, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { fsReason } from '../io/fs-errors.js';
import { DataError, type Source } from './errors.js';

/**
 * Where records come from: a JSONL/JSON file, several files read one after the other (a dataset mixture), or an
 * in-memory array of records.
 */
export type DataSource = string | { readonly files: readonly string[] } | readonly unknown[];

/** The name a source goes by in messages and reports. */
export function sourceName(source: DataSource, fallback = '<memory>'): string {
  if (typeof source === 'string') return source;
  if (!Array.isArray(source) && 'files' in source) return source.files.join(' + ');
  return fallback;
}

type RawRecord = { source: Source; value: unknown; error?: undefined } | { source: Source; value?: undefined; error: DataError };

function ioError(file: string, e: unknown): DataError {
  return new DataError({ file, line: 0 }, '', 'io', fsReason(e));
}

function jsonError(where: Source, e: unknown): DataError {
  return new DataError(where, '', 'invalid_json', `invalid JSON: ${(e as Error).message}`);
}

/**
 * The records of a JSONL file, streamed: one JSON value per line, blank lines ignored (they are not records),
 * a UTF-8 BOM and CRLF line ends accepted. Memory: the read chunk (256 KiB) plus the longest line.
 */
export async function* readJsonl(path: string): AsyncGenerator<RawRecord> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 18 });
  let rest = '';
  let lineNo = 0;
  let first = true;
  const parse = (text: string): RawRecord | null => {
    lineNo++;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (first) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text.trim().length === 0) return null;
    const source = { file: path, line: lineNo };
    try {
      return { source, value: JSON.parse(text) as unknown };
    } catch (e) {
      return { source, error: jsonError(source, e) };
    }
  };
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const text = rest + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
        const r = parse(text.slice(start, nl));
        start = nl + 1;
        if (r) yield r;
      }
      rest = text.slice(start);
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw ioError(path, e);
  } finally {
    stream.destroy();
  }
  if (rest.length) {
    const r = parse(rest);
    if (r) yield r;
  }
}

/** Offset and 1-based line of each top-level element of a JSON array text (best effort on broken text). */
function arrayElements(text: string): Array<{ offset: number; line: number }> {
  const out: Array<{ offset: number; line: number }> = [];
  let line = 1,
    depth = 0,
    inString = false,
    escape = false,
    expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) line++;
    if (inString) {
      if (escape) escape = false;
      else if (c === 92)
        escape = true; // backslash
      else if (c === 34) inString = false;
      continue;
    }
    const ws = c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff;
    if (depth === 1 && expectElement && !ws && c !== 93) {
      out.push({ offset: i, line });
      expectElement = false;
    }
    if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      depth++;
      if (depth === 1) expectElement = true;
    } else if (c === 93 || c === 125) depth--;
    else if (c === 44 && depth === 1) expectElement = true;
  }
  return out;
}

/** 1-based line of each top-level element of a JSON array text. */
export function arrayElementLines(text: string): number[] {
  return arrayElements(text).map((e) => e.line);
}

/** The line of the first element of a broken JSON array that does not parse on its own (else the error's position, else 1). */
function brokenLine(text: string, message: string): number {
  const els = arrayElements(text);
  for (let k = 0; k < els.length; k++) {
    const last = k + 1 === els.length;
    let piece = text.slice(els[k].offset, last ? text.length : els[k + 1].offset).trimEnd();
    if (piece.endsWith(last ? ']' : ',')) piece = piece.slice(0, -1);
    try {
      JSON.parse(piece);
    } catch {
      return els[k].line;
    }
  }
  const m = /position (\d+)/.exec(message);
  if (!m) return 1;
  let line = 1;
  for (let i = 0; i < Math.min(Number(m[1]), text.length); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The records of a file holding one JSON array (read whole: use JSONL for large data). */
function* readJsonArray(path: string): Generator<RawRecord> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw ioError(path, e);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // a broken array is not a set of records that could be skipped one by one: always an error
    throw jsonError({ file: path, line: brokenLine(text, (e as Error).message) }, e);
  }
  if (!Array.isArray(value)) throw new DataError({ file: path, line: 1 }, '', 'invalid_json', 'expected a JSON array of records (or a JSONL file: one record per line)');
  const lines = arrayElementLines(text);
  text = '';
  for (let i = 0; i < value.length; i++) yield { source: { file: path, line: lines[i] ?? 1 }, value: value[i] as unknown };
}

/** Records of an in-memory array; `line` is the 1-based record number. */
function* readArray(records: readonly unknown[], name = '<memory>'): Generator<RawRecord> {
  for (let i = 0; i < records.length; i++) yield { source: { file: name, line: i + 1 }, value: records[i] };
}

/** First non-whitespace character of a file (to tell a JSON array from JSONL). */
function firstChar(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw ioError(path, e);
  }
  try {
    const buf = Buffer.alloc(4096);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return '';
      const s = buf
        .subarray(0, n)
        .toString('latin1')
        .replace(/^(\xef\xbb\xbf)/, '');
      const m = /\S/.exec(s);
      if (m) return m[0];
    }
  } finally {
    closeSync(fd);
  }
}

type FileKind = 'jsonl' | 'json_array';

/** .jsonl / .ndjson are JSONL; otherwise a file whose first character is '[' is a JSON array, else JSONL. */
function fileKind(path: string): FileKind {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return firstChar(path) === '[' ? 'json_array' : 'jsonl';
}

/** The records of a file (JSONL or JSON array) or of an in-memory array. */
export async function* readRecords(source: DataSource, name?: string): AsyncGenerator<RawRecord> {
  if (typeof source !== 'string') {
    if (!Array.isArray(source) && 'files' in source) {
      for (const f of (source as { files: readonly string[] }).files) yield* readRecords(f);
      return;
    }
    yield* readArray(source as readonly unknown[], name);
    return;
  }
  if (fileKind(source) === 'json_array') yield* readJsonArray(source);
  else yield* readJsonl(source);
}
