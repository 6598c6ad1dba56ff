// The request bodies of /v1/chat/completions and /v1/completions, checked field by field as OpenAI's API defines
// them: unknown fields are ignored (as OpenAI does), a known field of the wrong type or out of range is a 400
// naming it, and options this server does not implement (penalties, logit_bias, tools, …) are refused when set to
// anything but their neutral value instead of being silently dropped.
import type { ChatMessage } from '../tokenizer/index.js';

/** An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface CommonRequest {
  model: string;
  /** null: not given (the endpoint's default) */
  maxTokens: number | null;
  temperature: number;
  topP: number | null;
  topK: number | null;
  stop: string[];
  seed: number | null;
  n: number;
  stream: boolean;
  includeUsage: boolean;
}

export interface ChatRequest extends CommonRequest {
  messages: ChatMessage[];
  logprobs: boolean;
  topLogprobs: number;
}

export interface CompletionRequest extends CommonRequest {
  /** each prompt is text or token ids */
  prompts: (string | number[])[];
  /** null: none; k: the chosen token's and the k most likely (0 … 20) */
  logprobs: number | null;
  echo: boolean;
}

const MAX_LOGPROBS = 20;
const MAX_STOP = 16;

type Body = Record<string, unknown>;

const bad = (param: string, message: string): never => {
  throw new ApiError(400, `${param}: ${message}`, 'invalid_request_error', param);
};

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
};

function num(b: Body, k: string, o: { min?: number; max?: number; int?: boolean; exclusiveMin?: boolean }): number | null {
  const v = b[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) return bad(k, `expected a number, got ${show(v)}`);
  if (o.int && !Number.isSafeInteger(v)) return bad(k, `expected an integer, got ${show(v)}`);
  if (o.min !== undefined && (o.exclusiveMin ? v <= o.min : v < o.min)) return bad(k, `must be ${o.exclusiveMin ? '>' : '>='} ${o.min}, got ${v}`);
  if (o.max !== undefined && v > o.max) return bad(k, `must be <= ${o.max}, got ${v}`);
  return v;
}

function bool(b: Body, k: string): boolean | null {
  const v = b[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'boolean') return bad(k, `expected true or false, got ${show(v)}`);
  return v;
}

/** Refuses a field this server does not implement unless it has its neutral value. */
function unsupported(b: Body, k: string, neutral: (v: unknown) => boolean, what: string): void {
  const v = b[k];
  if (v === undefined || v === null) return;
  if (!neutral(v)) bad(k, `${what} is not supported by this server`);
}

function common(b: Body, o: { maxN: number; minTokens: number }): CommonRequest {
  const model = b.model;
  if (model === undefined || model === null) bad('model', 'is required (GET /v1/models lists the names)');
  if (typeof model !== 'string' || model === '') bad('model', `expected a model name, got ${show(model)}`);
  let stop: string[] = [];
  const s = b.stop;
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s)) {
    if (s.length > MAX_STOP) bad('stop', `at most ${MAX_STOP} stop sequences, got ${s.length}`);
    s.forEach((x, i) => {
      if (typeof x !== 'string') bad('stop', `item ${i}: expected a string, got ${show(x)}`);
    });
    stop = s as string[];
  } else if (s !== undefined && s !== null) bad('stop', `expected a string or a list of strings, got ${show(s)}`);
  stop = stop.filter((x) => x !== '');
  const so = b.stream_options;
  let includeUsage = false;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so)) bad('stream_options', `expected an object, got ${show(so)}`);
    includeUsage = bool(so as Body, 'include_usage') ?? false;
  }
  const maxTokens = num(b, 'max_tokens', { int: true, min: o.minTokens }) ?? num(b, 'max_completion_tokens', { int: true, min: o.minTokens });
  const topK = num(b, 'top_k', { int: true, min: -1 });
  const n = num(b, 'n', { int: true, min: 1, max: o.maxN }) ?? 1;
  const bestOf = num(b, 'best_of', { int: true, min: 1 });
  if (bestOf !== null && bestOf !== n) bad('best_of', 'best_of other than n is not supported by this server');
  for (const k of ['presence_penalty', 'frequency_penalty']) {
    num(b, k, { min: -2, max: 2 });
    unsupported(b, k, (v) => v === 0, k.replace('_', ' '));
  }
  num(b, 'repetition_penalty', { min: 0, exclusiveMin: true });
  unsupported(b, 'repetition_penalty', (v) => v === 1, 'repetition penalty');
  unsupported(b, 'logit_bias', (v) => typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0, 'logit_bias');
  if (b.user !== undefined && b.user !== null && typeof b.user !== 'string') bad('user', `expected a string, got ${show(b.user)}`);
  return {
    model: model as string,
    maxTokens,
    temperature: num(b, 'temperature', { min: 0, max: 2 }) ?? 1,
    topP: num(b, 'top_p', { min: 0, max: 1, exclusiveMin: true }),
    topK: topK === null || topK <= 0 ? null : topK,
    stop,
    seed: num(b, 'seed', { int: true }),
    n,
    stream: bool(b, 'stream') ?? false,
    includeUsage,
  };
}

function object(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the body must be a JSON object');
  return body as Body;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

export function parseChatRequest(body: unknown, o: { maxN: number }): ChatRequest {
  const b = object(body);
  const c = common(b, { maxN: o.maxN, minTokens: 1 });
  const ms = b.messages;
  if (ms === undefined || ms === null) bad('messages', 'is required');
  if (!Array.isArray(ms) || ms.length === 0) bad('messages', `expected a non-empty list of messages, got ${show(ms)}`);
  const messages: ChatMessage[] = (ms as unknown[]).map((m, i) => {
    const p = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return bad(p, `expected an object {role, content}, got ${show(m)}`);
    const { role, content } = m as Body;
    if (typeof role !== 'string') return bad(`${p}.role`, `expected a string, got ${show(role)}`);
    if (!ROLES.has(role)) return bad(`${p}.role`, `${show(role)} is not supported (system, developer, user, assistant)`);
    let text: string;
    if (typeof content === 'string') text = content;
    else if ((content === null || content === undefined) && role === 'assistant') text = '';
    else if (Array.isArray(content)) {
      text = content
        .map((part, j) => {
          const pp = `${p}.content[${j}]`;
          if (typeof part !== 'object' || part === null) return bad(pp, `expected a content part, got ${show(part)}`);
          const { type, text: t } = part as Body;
          if (type !== 'text') return bad(`${pp}.type`, `only text content parts are supported, got ${show(type)}`);
          if (typeof t !== 'string') return bad(`${pp}.text`, `expected a string, got ${show(t)}`);
          return t;
        })
        .join('');
    } else return bad(`${p}.content`, `expected a string or a list of text parts, got ${show(content)}`);
    return { role: role === 'developer' ? 'system' : role, content: text };
  });
  const logprobs = bool(b, 'logprobs') ?? false;
  const top = num(b, 'top_logprobs', { int: true, min: 0, max: MAX_LOGPROBS });
  if (top !== null && top > 0 && !logprobs) bad('top_logprobs', 'needs logprobs: true');
  unsupported(b, 'tools', (v) => Array.isArray(v) && v.length === 0, 'tool calling');
  unsupported(b, 'tool_choice', (v) => v === 'none', 'tool calling');
  unsupported(b, 'functions', (v) => Array.isArray(v) && v.length === 0, 'function calling');
  unsupported(b, 'response_format', (v) => typeof v === 'object' && (v as Body).type === 'text', 'a response_format other than text');
  return { ...c, messages, logprobs, topLogprobs: top ?? 0 };
}

export function parseCompletionRequest(body: unknown, o: { maxN: number }): CompletionRequest {
  const b = object(body);
  const c = common(b, { maxN: o.maxN, minTokens: 0 });
  const p = b.prompt;
  let prompts: (string | number[])[];
  const isIds = (x: unknown): x is number[] => Array.isArray(x) && x.length > 0 && x.every((t) => typeof t === 'number');
  if (p === undefined || p === null) return bad('prompt', 'is required');
  if (typeof p === 'string') prompts = [p];
  else if (isIds(p)) prompts = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string')) prompts = p as string[];
  else if (Array.isArray(p) && p.length > 0 && p.every(isIds)) prompts = p as number[][];
  else return bad('prompt', `expected a string, a list of strings, a list of token ids or a list of such lists, got ${show(p)}`);
  for (const q of prompts) if (typeof q !== 'string') for (const id of q) if (!Number.isSafeInteger(id) || id < 0) bad('prompt', `token ids must be non-negative integers, got ${id}`);
  if (prompts.length * c.n > 128) bad('prompt', `${prompts.length} prompts × n = ${c.n} is more than 128 sequences in one request`);
  unsupported(b, 'suffix', (v) => v === '', 'suffix');
  return { ...c, prompts, logprobs: num(b, 'logprobs', { int: true, min: 0, max: MAX_LOGPROBS }), echo: bool(b, 'echo') ?? false };
}
