// Hugging Face tokenizer.json (+ tokenizer_config.json, chat template) → GGUF tokenizer metadata as llama.cpp reads
// it. Two families are supported:
//  - byte-level BPE (GPT-2 / Llama-3 style: BPE without byte_fallback, ByteLevel pre-tokenizer or decoder):
//    tokenizer.ggml.model = "gpt2", the byte-level token strings, "a b" merges, tokenizer.ggml.pre naming the
//    pre-tokenizer regex llama.cpp must use;
//  - SentencePiece-style BPE (Llama-2 / Mistral style: BPE with byte_fallback, "▁" for spaces, <0xXX> byte tokens):
//    tokenizer.ggml.model = "llama" with per-token scores. llama.cpp's SPM tokenizer merges the adjacent pair whose
//    concatenation has the highest score, so a token made by merge number r gets score −r: the merge order of the
//    BPE model is kept (the HF converter writes one placeholder score for every token instead).
// Token types follow llama.cpp's converter: 1 normal, 2 unknown, 3 control (special added tokens), 4 user-defined
// (other added tokens), 5 unused ("[PAD<id>]" fillers up to the model's vocab size), 6 byte (<0xXX>).
import { GgufType, type GgufMetadata } from './gguf-file.js';

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Pre-tokenizer names written to tokenizer.ggml.pre that llama.cpp (as bundled by node-llama-cpp 3.21) accepts. */
const KNOWN_PRE_TOKENIZERS = ['default', 'gpt-2', 'llama-bpe'] as const;

interface GgufTokenizerOptions {
  /** Rows of the embedding: the token list is padded with "[PAD<id>]" (unused) up to this size. */
  vocabSize: number;
  /** Parsed tokenizer_config.json (chat_template, add_bos_token, add_eos_token, add_prefix_space, special tokens). */
  tokenizerConfig?: Record<string, unknown> | null;
  /** A chat template (e.g. chat_template.jinja); wins over tokenizerConfig.chat_template. */
  chatTemplate?: string | null;
  /** tokenizer.ggml.pre for byte-level BPE; detected from the pre-tokenizer when omitted. */
  pre?: string;
  /** Special ids from the model config; when null/absent, looked up from tokenizer_config's token strings. */
  bosTokenId?: number | null;
  /** One id or several: GGUF holds one, the first is written. */
  eosTokenId?: number | readonly number[] | null;
  padTokenId?: number | null;
}

/** What the conversion decided (besides the metadata), for callers and tests. */
export interface GgufTokenizerInfo {
  model: 'gpt2' | 'llama';
  pre: string | null;
  /** Tokens in the tokenizer (before padding to vocabSize). */
  tokenizerSize: number;
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`GGUF tokenizer: ${what} must be an object`);
  return v as Json;
}

function fail(msg: string): never {
  throw new Error(`GGUF tokenizer: ${msg}`);
}

// The GPT-2 split pattern (tokenizers' ByteLevel use_regex) and Llama-3's, as written in tokenizer.json files.
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Flattens a pre-tokenizer (Sequence or single) into its steps. */
function steps(p: unknown): Json[] {
  if (p === null || p === undefined) return [];
  const o = obj(p, 'pre_tokenizer');
  if (o.type === 'Sequence') return ((o.pretokenizers as unknown[]) ?? []).flatMap(steps);
  return [o];
}

function splitPattern(s: Json): string | null {
  const pat = s.pattern as Json | undefined;
  if (!pat) return null;
  if (typeof pat.Regex === 'string') return pat.Regex;
  if (typeof pat.String === 'string') return pat.String;
  return null;
}

/** tokenizer.ggml.pre for a byte-level BPE pre-tokenizer whose regex llama.cpp implements, else null. */
export function detectPreTokenizer(tokenizerJson: unknown): string | null {
  const tj = obj(tokenizerJson, 'tokenizer.json');
  const s = steps(tj.pre_tokenizer);
  const isByteLevel = (x: Json, regex: boolean) => x.type === 'ByteLevel' && (x.use_regex ?? true) === regex && !x.add_prefix_space;
  // GPT-2: a single ByteLevel step doing its own regex split
  if (s.length === 1 && isByteLevel(s[0]!, true)) return 'gpt-2';
  // Split(regex) + ByteLevel(no regex): Llama-3 ("llama-bpe") or GPT-2's regex spelled out
  if (s.length === 2 && s[0]!.type === 'Split' && isByteLevel(s[1]!, false) && s[0]!.behavior === 'Isolated' && !s[0]!.invert) {
    const p = splitPattern(s[0]!);
    if (p === LLAMA3_PATTERN) return 'llama-bpe';
    if (p === GPT2_PATTERN) return 'gpt-2';
  }
  return null;
}

/** A token string from tokenizer_config (a string or an AddedToken object {content}). */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** Does the post-processor add `token` at the start (first=true) or end of a single sequence? */
function postProcessorAdds(pp: unknown, token: string | null, first: boolean): boolean {
  if (token === null || pp === null || pp === undefined) return false;
  const o = obj(pp, 'post_processor');
  if (o.type === 'Sequence') return ((o.processors as unknown[]) ?? []).some((p) => postProcessorAdds(p, token, first));
  if (o.type !== 'TemplateProcessing' || !Array.isArray(o.single) || o.single.length === 0) return false;
  const item = (first ? o.single[0] : o.single[o.single.length - 1]) as Json;
  const special = item.SpecialToken as Json | undefined;
  return special !== undefined && special.id === token;
}

/**
 * Builds the tokenizer.* metadata for a GGUF file. Throws on tokenizers llama.cpp cannot reproduce (WordPiece,
 * Unigram, byte-level BPE with an unknown pre-tokenizer regex and no explicit `pre`), on more tokens than
 * `vocabSize`, and on special ids outside the vocabulary.
 */
export function ggufTokenizerMetadata(tokenizerJson: unknown, opts: GgufTokenizerOptions): { metadata: GgufMetadata; info: GgufTokenizerInfo } {
  const tj = obj(tokenizerJson, 'tokenizer.json');
  const model = obj(tj.model, 'tokenizer.json "model"');
  const cfg = opts.tokenizerConfig ?? {};
  const V = opts.vocabSize;
  if (!Number.isInteger(V) || V <= 0) fail(`vocabSize ${V} must be a positive integer`);
  if (model.type !== 'BPE') fail(`model type ${JSON.stringify(model.type)} is not supported (BPE only: byte-level or SentencePiece-style)`);
  const byteFallback = model.byte_fallback === true;
  const kind: 'gpt2' | 'llama' = byteFallback ? 'llama' : 'gpt2';
  if (kind === 'gpt2') {
    const dec = tj.decoder as Json | null | undefined;
    const hasByteLevel = steps(tj.pre_tokenizer).some((s) => s.type === 'ByteLevel') || dec?.type === 'ByteLevel';
    if (!hasByteLevel) fail('a BPE model without byte_fallback must be byte-level (ByteLevel pre-tokenizer or decoder)');
  }

  // id → token
  const vocab = obj(model.vocab, 'model.vocab');
  const tokens: (string | undefined)[] = new Array(V);
  const types = new Int32Array(V);
  const place = (tok: string, id: unknown, what: string) => {
    if (!Number.isInteger(id) || (id as number) < 0) fail(`${what} ${JSON.stringify(tok)} has invalid id ${JSON.stringify(id)}`);
    const i = id as number;
    if (i >= V) fail(`${what} ${JSON.stringify(tok)} has id ${i} >= the model's vocab size ${V}`);
    if (tokens[i] !== undefined && tokens[i] !== tok) fail(`id ${i} is both ${JSON.stringify(tokens[i])} and ${JSON.stringify(tok)}`);
    tokens[i] = tok;
  };
  for (const [tok, id] of Object.entries(vocab)) {
    place(tok, id, 'token');
    types[id as number] = TOKEN_TYPE.NORMAL;
  }
  for (const a of (tj.added_tokens as unknown[] | undefined) ?? []) {
    const at = obj(a, 'added token');
    if (typeof at.content !== 'string') fail(`added token ${JSON.stringify(at)} has no content`);
    place(at.content, at.id, 'added token');
    types[at.id as number] = at.special === true ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  let tokenizerSize = 0;
  for (let i = 0; i < V; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.UNUSED;
    } else tokenizerSize++;
  }
  const ids = new Map<string, number>();
  for (let i = 0; i < V; i++) if (types[i] !== TOKEN_TYPE.UNUSED && !ids.has(tokens[i]!)) ids.set(tokens[i]!, i);

  // merges: "a b" strings or [a, b] pairs
  const merges: [string, string][] = [];
  for (const m of (model.merges as unknown[] | undefined) ?? []) {
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp < 0 || m.indexOf(' ', sp + 1) >= 0) fail(`merge ${JSON.stringify(m)} is not "a b"`);
      merges.push([m.slice(0, sp), m.slice(sp + 1)]);
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      merges.push([m[0], m[1]]);
    } else fail(`merge ${JSON.stringify(m)} is neither "a b" nor a pair`);
  }

  const md: GgufMetadata = new Map();
  const str = (k: string, v: string) => md.set(k, { type: GgufType.STRING, value: v });
  const u32 = (k: string, v: number) => md.set(k, { type: GgufType.UINT32, value: v });
  const bool = (k: string, v: boolean) => md.set(k, { type: GgufType.BOOL, value: v });

  let pre: string | null = null;
  str('tokenizer.ggml.model', kind);
  if (kind === 'gpt2') {
    pre = opts.pre ?? detectPreTokenizer(tj);
    if (pre === null) {
      fail(
        `the pre-tokenizer ${JSON.stringify(tj.pre_tokenizer)} is not one llama.cpp is known to reproduce; ` +
          `pass the "pre" option (one of ${KNOWN_PRE_TOKENIZERS.join(', ')} or another name llama.cpp accepts) to choose`,
      );
    }
    str('tokenizer.ggml.pre', pre);
  } else {
    str('tokenizer.ggml.pre', 'default');
  }
  md.set('tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokens as string[] });

  if (kind === 'llama') {
    const unk = typeof model.unk_token === 'string' ? model.unk_token : null;
    for (let i = 0; i < V; i++) {
      if (types[i] !== TOKEN_TYPE.NORMAL) continue;
      if (/^<0x[0-9A-Fa-f]{2}>$/.test(tokens[i]!)) types[i] = TOKEN_TYPE.BYTE;
      else if (tokens[i] === unk) types[i] = TOKEN_TYPE.UNKNOWN;
    }
    // score of a merged token: −(rank of the first merge producing it); other tokens 0
    const scores = new Float32Array(V);
    const scored = new Set<number>();
    merges.forEach(([a, b], r) => {
      const id = ids.get(a + b);
      if (id !== undefined && !scored.has(id)) {
        scored.add(id);
        scores[id] = -(r + 1);
      }
    });
    md.set('tokenizer.ggml.scores', { type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: Array.from(scores) });
  }
  md.set('tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: Array.from(types) });
  if (kind === 'gpt2') {
    for (const [a, b] of merges) if (a.includes(' ') || b.includes(' ')) fail(`merge part with a space (${JSON.stringify([a, b])}) cannot be written as "a b"`);
    md.set('tokenizer.ggml.merges', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: merges.map(([a, b]) => `${a} ${b}`) });
  }

  // special ids: model config first, then tokenizer_config's token strings
  const lookup = (field: string): number | null => {
    const s = tokenString(cfg[field]);
    return s === null ? null : (ids.get(s) ?? null);
  };
  const firstId = (v: number | readonly number[] | null | undefined) => (typeof v === 'number' ? v : Array.isArray(v) && v.length > 0 ? (v[0] as number) : null);
  const special: [string, number | null][] = [
    ['bos', opts.bosTokenId ?? lookup('bos_token')],
    ['eos', firstId(opts.eosTokenId) ?? lookup('eos_token')],
    ['padding', opts.padTokenId ?? lookup('pad_token')],
  ];
  if (kind === 'llama') special.push(['unknown', typeof model.unk_token === 'string' ? (ids.get(model.unk_token) ?? null) : lookup('unk_token')]);
  for (const [name, id] of special) {
    if (id === null) continue;
    if (!Number.isInteger(id) || id < 0 || id >= V) fail(`${name} token id ${id} is outside the vocabulary (size ${V})`);
    u32(`tokenizer.ggml.${name}_token_id`, id);
  }

  const bosStr = tokenString(cfg.bos_token) ?? (opts.bosTokenId != null ? tokens[opts.bosTokenId]! : null);
  const eosId = firstId(opts.eosTokenId);
  const eosStr = tokenString(cfg.eos_token) ?? (eosId !== null ? tokens[eosId]! : null);
  const addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : postProcessorAdds(tj.post_processor, bosStr, true);
  const addEos = typeof cfg.add_eos_token === 'boolean' ? cfg.add_eos_token : postProcessorAdds(tj.post_processor, eosStr, false);
  bool('tokenizer.ggml.add_bos_token', addBos);
  bool('tokenizer.ggml.add_eos_token', addEos);
  if (kind === 'llama') {
    let prefix = false;
    const norm = tj.normalizer as Json | null | undefined;
    const normSteps: Json[] = norm ? (norm.type === 'Sequence' ? ((norm.normalizers as Json[]) ?? []) : [norm]) : [];
    if (normSteps.some((n) => n.type === 'Prepend' && n.prepend === '\u2581')) prefix = true;
    for (const s of steps(tj.pre_tokenizer)) {
      if (s.type === 'Metaspace' && (s.prepend_scheme === 'always' || s.prepend_scheme === 'first' || (s.prepend_scheme === undefined && s.add_prefix_space === true))) prefix = true;
    }
    if (typeof cfg.add_prefix_space === 'boolean') prefix = cfg.add_prefix_space;
    bool('tokenizer.ggml.add_space_prefix', prefix);
  }

  // chat templates: explicit > tokenizer_config (a string, or a list of {name, template})
  const tpl = cfg.chat_template;
  if (typeof opts.chatTemplate === 'string') str('tokenizer.chat_template', opts.chatTemplate);
  else if (typeof tpl === 'string') str('tokenizer.chat_template', tpl);
  else if (Array.isArray(tpl)) {
    for (const t of tpl) {
      const o = obj(t, 'chat_template entry');
      if (typeof o.name !== 'string' || typeof o.template !== 'string') fail('chat_template entries need a name and a template');
      str(o.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${o.name}`, o.template);
    }
  }
  return { metadata: md, info: { model: kind, pre, tokenizerSize } };
}
