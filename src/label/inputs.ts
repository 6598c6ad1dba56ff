// Input files of the labeling app: prompts JSONL (what a policy answers) and pairs JSONL (ready-made response
// pairs). Every problem is reported with the file, the line and the field.
import { readFileSync } from 'node:fs';

export interface Message {
  role: string;
  content: string;
}

/** A prompt as TRL writes it: plain text (standard format) or a list of chat messages (conversational format). */
export type PromptValue = string | Message[];

export interface PromptRecord {
  /** 1-based line in the file */
  line: number;
  /** the line's optional "id" (kept for traceability) */
  id: string | null;
  prompt: PromptValue;
}

export interface PairRecord extends PromptRecord {
  responseA: string;
  responseB: string;
  /** where each response came from (optional "source_a" / "source_b": a model name, a checkpoint) */
  sourceA: string | null;
  sourceB: string | null;
}

export class InputError extends Error {
  override name = 'InputError';
}

/** Reads a prompts file: one JSON object per line with "prompt" (text or messages) and an optional "id". */
export function readPrompts(path: string): PromptRecord[] {
  return readJsonl(path, 'prompts', (obj, at) => ({ id: idField(obj, at), prompt: promptField(obj, at) }));
}

/**
 * Reads a pairs file: one JSON object per line with "prompt", "response_a", "response_b" (text, or a single
 * assistant message as a list), optional "id", "source_a", "source_b".
 */
export function readPairs(path: string): PairRecord[] {
  return readJsonl(path, 'pairs', (obj, at) => ({
    id: idField(obj, at),
    prompt: promptField(obj, at),
    responseA: responseField(obj, 'response_a', at),
    responseB: responseField(obj, 'response_b', at),
    sourceA: optionalString(obj, 'source_a', at),
    sourceB: optionalString(obj, 'source_b', at),
  }));
}

type At = (field: string | null, msg: string) => InputError;

function readJsonl<T>(path: string, what: string, parse: (obj: Record<string, unknown>, at: At) => T): (T & { line: number })[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`${path}: cannot read the ${what} file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: (T & { line: number })[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    const src = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (src.trim() === '') return;
    const at: At = (field, msg) => new InputError(`${path}:${line}: ${field === null ? '' : `field "${field}": `}${msg}`);
    let obj: unknown;
    try {
      obj = JSON.parse(src);
    } catch (e) {
      throw at(null, `not valid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw at(null, `expected a JSON object, got ${kind(obj)}`);
    out.push({ ...parse(obj as Record<string, unknown>, at), line });
  });
  if (out.length === 0) throw new InputError(`${path}: no ${what} (the file has no JSON lines)`);
  return out;
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function idField(obj: Record<string, unknown>, at: At): string | null {
  const v = obj.id;
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return String(v);
  throw at('id', `expected a string or a number, got ${kind(v)}`);
}

function optionalString(obj: Record<string, unknown>, field: string, at: At): string | null {
  const v = obj[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw at(field, `expected a string, got ${kind(v)}`);
  return v;
}

function promptField(obj: Record<string, unknown>, at: At): PromptValue {
  const v = obj.prompt;
  if (v === undefined) throw at('prompt', 'missing');
  if (typeof v === 'string') {
    if (v.trim() === '') throw at('prompt', 'is empty');
    return v;
  }
  if (!Array.isArray(v)) throw at('prompt', `expected text or a list of {"role", "content"} messages, got ${kind(v)}`);
  if (v.length === 0) throw at('prompt', 'the message list is empty');
  return v.map((m, i) => message(m, `prompt[${i}]`, at));
}

function message(m: unknown, field: string, at: At): Message {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw at(field, `expected a {"role", "content"} message, got ${kind(m)}`);
  const { role, content } = m as Record<string, unknown>;
  if (typeof role !== 'string' || role === '') throw at(`${field}.role`, role === undefined ? 'missing' : `expected a non-empty string, got ${kind(role)}`);
  if (typeof content !== 'string') throw at(`${field}.content`, content === undefined ? 'missing' : `expected a string, got ${kind(content)}`);
  return { role, content };
}

function responseField(obj: Record<string, unknown>, field: string, at: At): string {
  const v = obj[field];
  if (v === undefined) throw at(field, 'missing');
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length === 1) {
    const m = message(v[0], `${field}[0]`, at);
    if (m.role !== 'assistant') throw at(`${field}[0].role`, `expected "assistant", got ${JSON.stringify(m.role)}`);
    return m.content;
  }
  throw at(field, `expected text or a list holding one assistant message, got ${kind(v)}${Array.isArray(v) ? ` of ${v.length}` : ''}`);
}
