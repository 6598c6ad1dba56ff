// TRL's dataset formats: the type (language modelling, prompt-only, prompt-completion, preference — with an
// explicit prompt or an implicit one shared by chosen and rejected) and the format (standard: strings;
// conversational: lists of {role, content} messages). Detects the format from a record's columns, validates
// records against it (every error names file:line:field), and extracts implicit prompts as TRL's
// extract_prompt does.

import type { ChatMessage } from '../tokenizer/index.js';
import { DataError, type Source } from './errors.js';

export type DatasetType = 'language_modeling' | 'prompt_only' | 'prompt_completion' | 'preference';

export interface DatasetFormat {
  type: DatasetType;
  /** true: columns hold lists of {role, content} messages; false: strings */
  conversational: boolean;
  /** preference only: no prompt column, the prompt is the common start of chosen and rejected */
  implicitPrompt: boolean;
}

export type Message = ChatMessage;
/** A column's value: a string (standard) or a list of messages (conversational). */
export type Content = string | Message[];

interface RecordBase {
  source: Source;
  conversational: boolean;
}
export interface LanguageModelingRecord extends RecordBase {
  type: 'language_modeling';
  /** the `text` column (standard) or `messages` (conversational) */
  text: Content;
}
export interface PromptOnlyRecord extends RecordBase {
  type: 'prompt_only';
  prompt: Content;
}
export interface PromptCompletionRecord extends RecordBase {
  type: 'prompt_completion';
  prompt: Content;
  completion: Content;
}
export interface PreferenceRecord extends RecordBase {
  type: 'preference';
  /** the prompt column, or the extracted implicit prompt */
  prompt: Content;
  chosen: Content;
  rejected: Content;
  implicitPrompt: boolean;
}
/** A record that passed validation, in its format's shape. */
export type ValidRecord = LanguageModelingRecord | PromptOnlyRecord | PromptCompletionRecord | PreferenceRecord;

/** Message roles accepted by default. */
const DEFAULT_ROLES: readonly string[] = ['system', 'developer', 'user', 'assistant', 'tool', 'function', 'ipython'];

export interface FormatOptions {
  /** the dataset type; detected from the first record's columns when absent */
  type?: DatasetType;
  /** standard or conversational; detected from the first record when absent */
  conversational?: boolean;
  /** the column of standard language-modelling text (TRL's dataset_text_field). Default 'text'. */
  textField?: string;
  /** accepted message roles. Default DEFAULT_ROLES. */
  roles?: readonly string[];
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

export function describeFormat(f: DatasetFormat): string {
  const t = f.type === 'preference' && f.implicitPrompt ? 'preference (implicit prompt)' : f.type.replace('_', '-');
  return `${f.conversational ? 'conversational' : 'standard'} ${t}`;
}

function asObject(value: unknown, where: Source): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(where, '', 'not_object', `expected a JSON object (a record with named columns), got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

/**
 * The format of a record, from its columns (TRL's key sets): {text} or {messages}: language modelling;
 * {prompt}: prompt-only; {prompt, completion}: prompt-completion; {prompt, chosen, rejected}: preference;
 * {chosen, rejected}: preference with implicit prompt. Other columns are ignored. Conversational when the
 * main column holds a list. `opts.type` / `opts.conversational` override the detection.
 */
export function detectFormat(value: unknown, where: Source = { file: '<record>', line: 1 }, opts: FormatOptions = {}): DatasetFormat {
  const rec = asObject(value, where);
  const textField = opts.textField ?? 'text';
  const has = (k: string) => rec[k] !== undefined;
  let type = opts.type;
  let implicitPrompt = false;
  if (type === undefined) {
    const known = [textField, 'messages', 'prompt', 'completion', 'chosen', 'rejected', 'label'].filter(has);
    const key = known
      .filter((k) => k !== textField && k !== 'messages')
      .sort()
      .join(',');
    const lm = known.includes(textField) || known.includes('messages');
    if (known.includes('label')) {
      throw new DataError(where, 'label', 'unknown_format', 'unpaired preference data (prompt, completion, label) is not supported; use paired preference data (prompt, chosen, rejected)');
    }
    if (lm && known.length === 1) type = 'language_modeling';
    else if (!lm && key === 'prompt') type = 'prompt_only';
    else if (!lm && key === 'completion,prompt') type = 'prompt_completion';
    else if (!lm && (key === 'chosen,prompt,rejected' || key === 'chosen,rejected')) type = 'preference';
    else {
      const got = known.length ? `columns ${known.join(', ')}` : `no known column (has: ${Object.keys(rec).slice(0, 8).join(', ') || 'nothing'})`;
      throw new DataError(
        where,
        '',
        'unknown_format',
        `cannot tell the dataset format from ${got}; expected one of {${textField}}, {messages}, {prompt}, {prompt, completion}, {prompt, chosen, rejected}, {chosen, rejected}`,
      );
    }
  }
  if (type === 'preference') implicitPrompt = !has('prompt');
  let conversational = opts.conversational;
  if (conversational === undefined) {
    if (type === 'language_modeling') conversational = !has(textField) && has('messages');
    else {
      const main = type === 'preference' && implicitPrompt ? 'chosen' : 'prompt';
      const v = rec[main];
      if (v === undefined) throw new DataError(where, main, 'missing_column', `missing column '${main}' (needed to tell standard from conversational data)`);
      if (typeof v === 'string') conversational = false;
      else if (Array.isArray(v)) conversational = true;
      else throw new DataError(where, main, 'wrong_type', `expected a string (standard) or a list of messages (conversational), got ${typeName(v)}`);
    }
  }
  return { type, conversational, implicitPrompt };
}

function checkMessages(v: unknown, field: string, where: Source, roles: readonly string[], allowEmpty: boolean): Message[] {
  if (!Array.isArray(v)) throw new DataError(where, field, 'wrong_type', `expected a list of {role, content} messages (conversational data), got ${typeName(v)}`);
  if (v.length === 0 && !allowEmpty) throw new DataError(where, field, 'empty', 'empty list of messages');
  v.forEach((m, k) => {
    const f = `${field}[${k}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new DataError(where, f, 'bad_message', `expected a message object {role, content}, got ${typeName(m)}`);
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string') throw new DataError(where, `${f}.role`, 'bad_message', msg.role === undefined ? 'missing role' : `expected a string role, got ${typeName(msg.role)}`);
    if (!roles.includes(msg.role)) throw new DataError(where, `${f}.role`, 'bad_message', `unknown role ${JSON.stringify(msg.role)} (expected one of ${roles.join(', ')})`);
    const c = msg.content;
    if (c === undefined || c === null) {
      if (!(msg.role === 'assistant' && Array.isArray(msg.tool_calls))) throw new DataError(where, `${f}.content`, 'bad_message', 'missing content');
    } else if (Array.isArray(c)) {
      c.forEach((p, j) => {
        const pf = `${f}.content[${j}]`;
        if (p === null || typeof p !== 'object' || Array.isArray(p) || typeof (p as { type?: unknown }).type !== 'string') {
          throw new DataError(where, pf, 'bad_message', 'expected a content part {type, ...}');
        }
        if ((p as { type: string }).type === 'text' && typeof (p as { text?: unknown }).text !== 'string') throw new DataError(where, `${pf}.text`, 'bad_message', 'a text part needs a string text');
      });
    } else if (typeof c !== 'string') {
      throw new DataError(where, `${f}.content`, 'bad_message', `expected a string (or a list of content parts), got ${typeName(c)}`);
    }
  });
  return v as Message[];
}

function column(rec: Record<string, unknown>, key: string, f: DatasetFormat, where: Source, roles: readonly string[], detectedFrom: Source | null): Content {
  const v = rec[key];
  if (v === undefined) {
    const from = detectedFrom ? ` detected from ${detectedFrom.file}:${detectedFrom.line}` : '';
    throw new DataError(where, key, 'missing_column', `missing column '${key}' (the dataset is ${describeFormat(f)}${from})`);
  }
  if (f.conversational) {
    if (typeof v === 'string') throw new DataError(where, key, 'wrong_type', `expected a list of messages (the dataset is conversational), got a string`);
    return checkMessages(v, key, where, roles, false);
  }
  if (typeof v !== 'string') throw new DataError(where, key, 'wrong_type', `expected a string (the dataset is standard), got ${typeName(v)}`);
  return v;
}

/** Deep equality of JSON values. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * TRL's extract_prompt: the prompt is the common start of chosen and rejected, cut at the first position where
 * they differ (characters for strings, whole messages for conversations). For strings, when the character just
 * before that position is a space, the space goes to the completions (" blue." / " green."). When one is a
 * prefix of the other, the cut is one element before the end of the shorter (so neither completion is empty).
 * Strings are never cut between the two halves of a surrogate pair.
 */
export function extractPrompt<T extends Content>(chosen: T, rejected: T): { prompt: T; chosen: T; rejected: T } {
  const n = Math.min(chosen.length, rejected.length);
  let idx = -1;
  const same = (i: number) => (typeof chosen === 'string' ? chosen[i] === rejected[i] : jsonEqual(chosen[i], rejected[i]));
  let differ = false;
  for (let i = 0; i < n && !differ; i++) if (!same(i)) [idx, differ] = [i, true];
  if (!differ) idx = Math.max(0, n - 1);
  if (typeof chosen === 'string') {
    if (idx > 0 && (chosen.charCodeAt(idx) & 0xfc00) === 0xdc00 && (chosen.charCodeAt(idx - 1) & 0xfc00) === 0xd800) idx--;
    if (differ && idx > 0 && chosen[idx - 1] === ' ') idx--;
  }
  return { prompt: chosen.slice(0, idx) as T, chosen: chosen.slice(idx) as T, rejected: rejected.slice(idx) as T };
}

/**
 * Checks one record against the dataset's format and returns it in the format's shape (implicit prompts
 * extracted). Throws a DataError naming where.file:where.line and the field. `detectedFrom` (the record the
 * format was detected from) is mentioned in missing-column errors.
 */
export function validateRecord(value: unknown, f: DatasetFormat, where: Source, opts: FormatOptions = {}, detectedFrom: Source | null = null): ValidRecord {
  const rec = asObject(value, where);
  const roles = opts.roles ?? DEFAULT_ROLES;
  const col = (k: string) => column(rec, k, f, where, roles, detectedFrom);
  const base = { source: where, conversational: f.conversational };
  const notEmpty = (c: Content, field: string, what: string) => {
    if (typeof c === 'string' && c.length === 0) throw new DataError(where, field, 'empty', `empty ${what}`);
  };
  switch (f.type) {
    case 'language_modeling': {
      const text = col(f.conversational ? 'messages' : (opts.textField ?? 'text'));
      notEmpty(text, opts.textField ?? 'text', 'text');
      return { ...base, type: 'language_modeling', text };
    }
    case 'prompt_only': {
      const prompt = col('prompt');
      notEmpty(prompt, 'prompt', 'prompt (a prompt-only dataset needs text to generate from)');
      return { ...base, type: 'prompt_only', prompt };
    }
    case 'prompt_completion': {
      const prompt = col('prompt');
      const completion = col('completion');
      notEmpty(completion, 'completion', 'completion');
      return { ...base, type: 'prompt_completion', prompt, completion };
    }
    case 'preference': {
      const prompt = f.implicitPrompt ? null : col('prompt');
      const chosen = col('chosen');
      const rejected = col('rejected');
      notEmpty(chosen, 'chosen', 'chosen completion');
      notEmpty(rejected, 'rejected', 'rejected completion');
      if (jsonEqual(chosen, rejected)) throw new DataError(where, 'rejected', 'identical_pair', 'chosen and rejected are identical (the pair carries no preference)');
      if (prompt !== null) return { ...base, type: 'preference', prompt, chosen, rejected, implicitPrompt: false };
      const x = extractPrompt(chosen, rejected);
      if (f.conversational && x.prompt.length === 0) {
        throw new DataError(where, 'chosen', 'empty', 'chosen and rejected share no leading message, so there is no implicit prompt (add a prompt column)');
      }
      return { ...base, type: 'preference', prompt: x.prompt, chosen: x.chosen, rejected: x.rejected, implicitPrompt: true };
    }
  }
}
