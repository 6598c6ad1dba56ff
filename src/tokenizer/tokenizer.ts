// The Tokenizer: loads a Hugging Face tokenizer.json (+ tokenizer_config.json, chat_template.jinja) and encodes
// and decodes like the `tokenizers` library: added tokens -> normalizer -> pre-tokenizer -> BPE model ->
// truncation -> post-processor -> padding; decode through the decoder. Also chat templates with assistant masks,
// and saving back to a directory.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AddedVocabulary, readAddedTokens, type AddedToken } from './added-tokens.js';
import { BPEModel } from './bpe.js';
import { renderChat, renderChatWithAssistantSpans, ChatTemplateError, type ChatMessage, type RenderContext } from './chat-template.js';
import { buildDecoder, cleanupSpaces, type Decoder } from './decoders.js';
import { Reader, TokenizerError, TokenizerFormatError, type Json, type JsonObject } from './errors.js';
import { buildNormalizer, type Normalizer } from './normalizers.js';
import { buildPostProcessor, emptyEncoding, type Encoding, type PostProcessor } from './post-processors.js';
import { buildPreTokenizer, type PreTokenizer } from './pre-tokenizers.js';

interface EncodeOptions {
  /** Add the post-processor's special tokens (BOS/EOS, CLS/SEP). Default true. */
  addSpecialTokens?: boolean;
}

interface DecodeOptions {
  /** Drop added tokens marked special. Default false (as transformers' decode). */
  skipSpecialTokens?: boolean;
  /** transformers' clean_up_tokenization_spaces; default: the config's value, else false. */
  cleanUpTokenizationSpaces?: boolean;
}

interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Return token ids instead of text (encoded without adding special tokens, as transformers does). */
  tokenize?: boolean;
  /** Return {inputIds, assistantMask, text}: 1 for tokens of assistant turns. Implies tokenize. */
  returnAssistantMask?: boolean;
  /** Stop the rendering right after the final message (to continue it). */
  continueFinalMessage?: boolean;
  /** Name of one of several named templates, or a template string to use instead of the tokenizer's. */
  chatTemplate?: string;
  tools?: unknown[];
  documents?: unknown[];
  /** Extra template variables. */
  variables?: Record<string, unknown>;
}

interface AssistantMaskResult {
  text: string;
  inputIds: number[];
  assistantMask: number[];
}

type ChatTemplates = string | Record<string, string> | null;

interface Truncation {
  maxLength: number;
  direction: 'Right' | 'Left';
}
interface Padding {
  fixed: number | null;
  direction: 'Right' | 'Left';
  multipleOf: number | null;
  padId: number;
  padTypeId: number;
  padToken: string;
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** Token string of a config entry: "..." or {"content": "..."} (AddedToken dict). */
function tokenString(v: Json | undefined): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.content === 'string') return v.content;
  return null;
}

function readJsonFile(path: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerError(`cannot read ${what} (${path}): ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new TokenizerError(`${what} (${path}) is not valid JSON: ${(e as Error).message}`);
  }
}

function readChatTemplates(config: JsonObject): ChatTemplates {
  const v = config.chat_template;
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const out: Record<string, string> = {};
    v.forEach((e, k) => {
      const r = Reader.of(e, `chat_template[${k}]`);
      out[r.string('name')] = r.string('template');
    });
    return out;
  }
  throw new TokenizerFormatError('chat_template', 'expected a string or a list of {name, template}', 'tokenizer_config.json');
}

export class Tokenizer {
  readonly normalizer: Normalizer | null;
  readonly preTokenizer: PreTokenizer | null;
  readonly model: BPEModel;
  readonly postProcessor: PostProcessor | null;
  readonly decoder: Decoder | null;
  readonly addedVocabulary: AddedVocabulary;
  /** tokenizer_config.json contents (special tokens, model_max_length, ...). */
  readonly config: JsonObject;
  /** Chat template(s): one template, or named templates ("default", "tool_use", ...). */
  chatTemplate: ChatTemplates;
  /** Problems found while loading that the tokenizers library also tolerates (e.g. added-token id mismatches). */
  readonly warnings: string[] = [];
  private readonly json: JsonObject;
  private readonly truncation: Truncation | null;
  private readonly padding: Padding | null;

  private constructor(json: JsonObject, config: JsonObject, chatTemplate: ChatTemplates) {
    const r = Reader.of(json, '');
    this.json = json;
    this.config = config;
    this.chatTemplate = chatTemplate;
    if (!r.has('model')) r.fail('model', 'missing (expected the model object)');
    this.model = BPEModel.fromJSON(r.raw('model'), 'model');
    this.normalizer = buildNormalizer(r.raw('normalizer'), 'normalizer');
    this.preTokenizer = buildPreTokenizer(r.raw('pre_tokenizer'), 'pre_tokenizer');
    this.postProcessor = buildPostProcessor(r.raw('post_processor'), 'post_processor');
    this.decoder = buildDecoder(r.raw('decoder'), 'decoder');
    this.addedVocabulary = new AddedVocabulary(this.assignAddedIds(readAddedTokens(r.raw('added_tokens'), 'added_tokens')), this.normalizer);
    this.truncation = r.has('truncation') ? Tokenizer.readTruncation(r.object('truncation')) : null;
    this.padding = r.has('padding') ? Tokenizer.readPadding(r.object('padding')) : null;
  }

  /**
   * The ids added tokens really get. Like the tokenizers library, the "id" fields of tokenizer.json are not
   * used: a token already in the vocabulary keeps that id, the others get the next ids after the model
   * vocabulary, in file order. Disagreements with the file are listed in `warnings`.
   */
  private assignAddedIds(tokens: AddedToken[]): AddedToken[] {
    const byContent = new Map<string, AddedToken>();
    let nextId = this.model.size;
    tokens.forEach((t, k) => {
      if (t.content.length === 0) return;
      const id = byContent.get(t.content)?.id ?? this.model.tokenToId(t.content) ?? nextId++;
      if (id !== t.id) this.warnings.push(`added_tokens[${k}]: the token ${JSON.stringify(t.content)} is declared with id ${t.id} but gets id ${id} (as in the tokenizers library)`);
      byContent.delete(t.content);
      byContent.set(t.content, { ...t, id });
    });
    return [...byContent.values()];
  }

  private static readTruncation(r: Reader): Truncation {
    const direction = r.string('direction', 'Right');
    if (direction !== 'Right' && direction !== 'Left') r.fail('direction', 'expected "Right" or "Left"');
    return { maxLength: r.int('max_length'), direction };
  }

  private static readPadding(r: Reader): Padding {
    const direction = r.string('direction', 'Right');
    if (direction !== 'Right' && direction !== 'Left') r.fail('direction', 'expected "Right" or "Left"');
    const s = r.raw('strategy');
    let fixed: number | null = null;
    if (s && typeof s === 'object' && !Array.isArray(s)) fixed = Reader.of(s, r.field('strategy')).int('Fixed');
    else if (s !== undefined && s !== 'BatchLongest') r.fail('strategy', 'expected "BatchLongest" or {"Fixed": n}');
    return {
      fixed,
      direction,
      multipleOf: r.number('pad_to_multiple_of', null),
      padId: r.int('pad_id', 0),
      padTypeId: r.int('pad_type_id', 0),
      padToken: r.string('pad_token', '[PAD]'),
    };
  }

  // ---------------------------------------------------------------- loading

  /** From a parsed tokenizer.json object, with an optional tokenizer_config.json object and chat template. */
  static fromJSON(json: unknown, config: Record<string, unknown> = {}, chatTemplate?: string | Record<string, string> | null): Tokenizer {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new TokenizerFormatError('(root)', 'expected a JSON object');
    const cfg = config as JsonObject;
    const templates = chatTemplate !== undefined ? chatTemplate : readChatTemplates(cfg);
    return new Tokenizer(structuredClone(json) as JsonObject, structuredClone(cfg), templates);
  }

  /** From a tokenizer.json file. */
  static fromFile(path: string): Tokenizer {
    return Tokenizer.fromJSON(readJsonFile(path, 'tokenizer.json'));
  }

  /**
   * From a model directory: tokenizer.json (required), tokenizer_config.json, special_tokens_map.json and
   * chat_template.jinja (each optional; the .jinja file wins over the config's chat_template).
   */
  static fromPretrained(dir: string): Tokenizer {
    const tj = join(dir, 'tokenizer.json');
    if (!existsSync(tj)) throw new TokenizerError(`no tokenizer.json in ${dir} (only the fast-tokenizer format is supported)`);
    const json = readJsonFile(tj, 'tokenizer.json');
    const cp = join(dir, 'tokenizer_config.json');
    const config = (existsSync(cp) ? readJsonFile(cp, 'tokenizer_config.json') : {}) as JsonObject;
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new TokenizerFormatError('(root)', 'expected a JSON object', 'tokenizer_config.json');
    const sp = join(dir, 'special_tokens_map.json');
    if (existsSync(sp)) {
      const map = readJsonFile(sp, 'special_tokens_map.json');
      if (map && typeof map === 'object' && !Array.isArray(map)) {
        for (const k of SPECIAL_KEYS) if (config[k] === undefined && map[k] !== undefined) config[k] = map[k];
      }
    }
    const jp = join(dir, 'chat_template.jinja');
    const template = existsSync(jp) ? readFileSync(jp, 'utf8') : readChatTemplates(config);
    return Tokenizer.fromJSON(json, config, template);
  }

  /** The tokenizer.json object. */
  toJSON(): JsonObject {
    return structuredClone(this.json);
  }

  /** Writes tokenizer.json, tokenizer_config.json and (if there is a single template) chat_template.jinja. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(this.json, null, 2) + '\n');
    const config: JsonObject = structuredClone(this.config);
    delete config.chat_template;
    if (config.tokenizer_class === undefined) config.tokenizer_class = 'PreTrainedTokenizerFast';
    const decoderMap: JsonObject = {};
    for (const t of this.addedVocabulary.tokens) {
      decoderMap[String(t.id)] = { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.singleWord, special: t.special };
    }
    config.added_tokens_decoder = decoderMap;
    if (typeof this.chatTemplate === 'string') writeFileSync(join(dir, 'chat_template.jinja'), this.chatTemplate);
    else if (this.chatTemplate) config.chat_template = Object.entries(this.chatTemplate).map(([name, template]) => ({ name, template }));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  }

  // ---------------------------------------------------------------- vocabulary

  /** Number of distinct tokens: model vocabulary plus added tokens that are not in it. */
  get vocabSize(): number {
    let n = this.model.size;
    for (const t of this.addedVocabulary.tokens) if (this.model.tokenToId(t.content) === undefined) n++;
    return n;
  }

  tokenToId(token: string): number | undefined {
    return this.addedVocabulary.tokenToId(token) ?? this.model.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedVocabulary.idToToken(id) ?? this.model.idToToken(id);
  }

  /** A special token of tokenizer_config.json (bos_token, eos_token, pad_token, ...) as a string. */
  specialToken(name: string): string | undefined {
    return tokenString(this.config[name]) ?? undefined;
  }

  private specialId(name: string): number | undefined {
    const t = this.specialToken(name);
    return t === undefined ? undefined : this.tokenToId(t);
  }

  get bosTokenId(): number | undefined {
    return this.specialId('bos_token');
  }
  get eosTokenId(): number | undefined {
    return this.specialId('eos_token');
  }
  get padTokenId(): number | undefined {
    return this.specialId('pad_token');
  }
  get unkTokenId(): number | undefined {
    return this.specialId('unk_token');
  }

  /** Ids of all added tokens marked special. */
  get specialTokenIds(): number[] {
    return this.addedVocabulary.tokens.filter((t) => t.special).map((t) => t.id);
  }

  // ---------------------------------------------------------------- encoding

  /** Token ids of `text`. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.run(text, opts.addSpecialTokens ?? true, false).ids;
  }

  /** Full encoding: ids, token strings, offsets (UTF-16 units of `text`), masks. */
  encodeWithOffsets(text: string, opts: EncodeOptions = {}): Encoding {
    return this.run(text, opts.addSpecialTokens ?? true, true);
  }

  /** The pipeline. Without `withOffsets`, the offsets array stays empty (the rest is filled). */
  private run(text: string, addSpecial: boolean, withOffsets: boolean): Encoding {
    if (typeof text !== 'string') throw new TokenizerError(`encode: expected a string, got ${typeof text}`);
    let enc = emptyEncoding();
    const { ids, tokens, offsets } = enc;
    for (const split of this.addedVocabulary.extractAndNormalize(text, this.normalizer, withOffsets)) {
      if (split.tokenId !== null) {
        ids.push(split.tokenId);
        tokens.push(split.ns.text);
        if (withOffsets) offsets.push(split.ns.originalSpan(0, split.ns.length));
        continue;
      }
      const pieces = this.preTokenizer ? this.preTokenizer.preTokenize([split.ns]) : [split.ns];
      for (const p of pieces) {
        for (const t of this.model.tokenize(p.text)) {
          ids.push(t.id);
          tokens.push(this.model.idToToken(t.id)!);
          if (withOffsets) offsets.push(p.originalSpan(t.start, t.end));
        }
      }
    }
    const n = ids.length;
    enc.specialTokensMask = new Array<number>(n).fill(0);
    enc.typeIds = new Array<number>(n).fill(0);
    enc.attentionMask = new Array<number>(n).fill(1);
    if (this.truncation) {
      const max = Math.max(0, this.truncation.maxLength - (addSpecial && this.postProcessor ? this.postProcessor.addedTokens() : 0));
      if (n > max) {
        const keep = <T>(a: T[]) => (this.truncation!.direction === 'Right' ? a.slice(0, max) : a.slice(Math.max(0, a.length - max)));
        enc = {
          ids: keep(enc.ids),
          tokens: keep(enc.tokens),
          offsets: keep(enc.offsets),
          specialTokensMask: keep(enc.specialTokensMask),
          typeIds: keep(enc.typeIds),
          attentionMask: keep(enc.attentionMask),
        };
      }
    }
    if (this.postProcessor) {
      enc = this.postProcessor.process(enc, addSpecial);
      // offset trimming counts characters; never leave an offset between the halves of a surrogate pair
      for (const off of enc.offsets) {
        for (let j = 0; j < 2; j++) {
          const p = off[j];
          if (p > 0 && p < text.length && (text.charCodeAt(p) & 0xfc00) === 0xdc00 && (text.charCodeAt(p - 1) & 0xfc00) === 0xd800) off[j] = p + 1;
        }
        if (off[0] > off[1]) off[0] = off[1];
      }
    }
    if (this.padding) this.pad(enc, this.padding, withOffsets);
    if (!withOffsets) enc.offsets = [];
    return enc;
  }

  private pad(enc: Encoding, p: Padding, withOffsets: boolean): void {
    let target = p.fixed ?? enc.ids.length;
    if (p.multipleOf && p.multipleOf > 0 && target % p.multipleOf !== 0) target += p.multipleOf - (target % p.multipleOf);
    const n = target - enc.ids.length;
    if (n <= 0) return;
    const fill = <T>(a: T[], v: T) => {
      const pad = new Array<T>(n).fill(v);
      const all = p.direction === 'Right' ? a.concat(pad) : pad.concat(a);
      a.length = 0;
      for (const x of all) a.push(x);
    };
    fill(enc.ids, p.padId);
    fill(enc.tokens, p.padToken);
    fill(enc.typeIds, p.padTypeId);
    fill(enc.specialTokensMask, 1);
    fill(enc.attentionMask, 0);
    if (withOffsets) fill(enc.offsets, [0, 0]);
    enc.offsets = enc.offsets.map((o) => [o[0], o[1]]); // padding entries must not share one array
  }

  // ---------------------------------------------------------------- decoding

  /** Text of `ids`. Unknown ids are skipped (as the tokenizers library does). */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecialTokens ?? false;
    const tokens: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      const t = this.addedVocabulary.decodeForm(id) ?? this.model.idToToken(id);
      if (t === undefined) continue;
      if (skip && this.addedVocabulary.isSpecialContent(t)) continue;
      tokens.push(t);
    }
    const text = this.decoder ? this.decoder.decodeChain(tokens).join('') : tokens.join(' ');
    const cleanup = opts.cleanUpTokenizationSpaces ?? this.config.clean_up_tokenization_spaces === true;
    return cleanup ? cleanupSpaces(text, false) : text;
  }

  // ---------------------------------------------------------------- chat templates

  private resolveTemplate(choice: string | undefined, hasTools: boolean): string {
    const t = this.chatTemplate;
    if (choice !== undefined && (t === null || typeof t === 'string' || !(choice in t))) {
      if (typeof t === 'object' && t !== null && /^[\w-]+$/.test(choice)) throw new ChatTemplateError(`no chat template named ${JSON.stringify(choice)} (have: ${Object.keys(t).join(', ')})`);
      return choice; // a template given inline
    }
    if (t === null) throw new ChatTemplateError('this tokenizer has no chat template (tokenizer_config.json chat_template or chat_template.jinja); pass one with {chatTemplate}');
    if (typeof t === 'string') return t;
    if (choice !== undefined) return t[choice];
    if (hasTools && t.tool_use) return t.tool_use;
    if (t.default) return t.default;
    throw new ChatTemplateError(`this tokenizer has several chat templates (${Object.keys(t).join(', ')}) and no "default"; choose one with {chatTemplate}`);
  }

  private renderContext(opts: ChatTemplateOptions): RenderContext {
    const variables: Record<string, unknown> = {};
    for (const k of SPECIAL_KEYS) {
      const s = this.specialToken(k);
      if (s !== undefined) variables[k] = s;
    }
    const extra = this.config.additional_special_tokens;
    if (Array.isArray(extra)) variables.additional_special_tokens = extra.map(tokenString).filter((s) => s !== null);
    Object.assign(variables, opts.variables ?? {});
    return { variables, tools: opts.tools, documents: opts.documents };
  }

  /** Renders `messages` with the chat template (text by default; ids with tokenize; ids + mask with returnAssistantMask). */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions & { returnAssistantMask: true }): AssistantMaskResult;
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions & { tokenize: true; returnAssistantMask?: false }): number[];
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions & { tokenize?: false; returnAssistantMask?: false }): string;
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string | number[] | AssistantMaskResult;
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string | number[] | AssistantMaskResult {
    const template = this.resolveTemplate(opts.chatTemplate, Array.isArray(opts.tools) && opts.tools.length > 0);
    const ctx = this.renderContext(opts);
    const ropts = { addGenerationPrompt: opts.addGenerationPrompt ?? false, continueFinalMessage: opts.continueFinalMessage ?? false };
    if (opts.returnAssistantMask) {
      const { text, spans } = renderChatWithAssistantSpans(template, messages, ctx, ropts);
      const enc = this.encodeWithOffsets(text, { addSpecialTokens: false });
      const mask = enc.offsets.map(([a, b]) => (b > a && spans.some(([s, e]) => a < e && b > s) ? 1 : 0));
      return { text, inputIds: enc.ids, assistantMask: mask };
    }
    const text = renderChat(template, messages, ctx, ropts);
    return opts.tokenize ? this.encode(text, { addSpecialTokens: false }) : text;
  }

  // ---------------------------------------------------------------- building

  /** Builds a tokenizer from parts that are already in tokenizer.json form (used by the trainer). */
  static fromParts(parts: {
    model: JsonObject;
    addedTokens?: AddedToken[];
    normalizer?: JsonObject | null;
    preTokenizer?: JsonObject | null;
    postProcessor?: JsonObject | null;
    decoder?: JsonObject | null;
    config?: JsonObject;
    chatTemplate?: string | null;
  }): Tokenizer {
    const json: JsonObject = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: (parts.addedTokens ?? []).map((t) => ({
        id: t.id,
        content: t.content,
        single_word: t.singleWord,
        lstrip: t.lstrip,
        rstrip: t.rstrip,
        normalized: t.normalized,
        special: t.special,
      })),
      normalizer: parts.normalizer ?? null,
      pre_tokenizer: parts.preTokenizer ?? null,
      post_processor: parts.postProcessor ?? null,
      decoder: parts.decoder ?? null,
      model: parts.model,
    };
    return new Tokenizer(json, parts.config ?? {}, parts.chatTemplate ?? null);
  }
}
