// Tokenisation of validated records into training examples, with the rules TRL's users learned the hard way:
// - BOS: added where the tokenizer itself adds it (its post-processor puts BOS before the text: Llama, Mistral),
//   never twice: not when the text or the chat template's rendering already starts with it; never for
//   tokenizers that add none (GPT-2, Qwen). `addBos` overrides.
// - EOS: appended to every completion (and to language-modelling text), inside the completion mask, so the
//   model learns to stop, also when pad = EOS (the masks are explicit, never derived from pad ids). Not when
//   the ids already end with EOS (standard) or the template already closed the turn with EOS (conversational:
//   the rendered completion contains EOS, e.g. ChatML with eos <|im_end|>). `addEos: false` turns it off.
// - The prompt is tokenised once; chosen and rejected are tokenised on their own and share the prompt ids.
//   Conversational prompts are rendered with the generation prompt (or continuing a final assistant message,
//   as TRL does), the completion is the rest of the rendering of prompt + completion, and a template whose
//   full rendering does not start with the prompt's rendering is an error naming the record.
// - max_length / max_prompt_length / max_completion_length with truncation_mode (truncate.ts); a row that
//   truncation leaves without a completion token is an error (or a counted skip), never silently dropped.

import type { Tokenizer, ChatMessage } from '../tokenizer/index.js';
import { DataError, type Source } from './errors.js';
import type { Content, LanguageModelingRecord, Message, PreferenceRecord, PromptCompletionRecord, ValidRecord } from './formats.js';
import { checkTruncationOptions, planTruncation, type Span, type TruncationOptions } from './truncate.js';

export interface TokenizeOptions extends TruncationOptions {
  /** prepend BOS: default as the tokenizer does (its post-processor adds BOS); never doubled */
  addBos?: boolean;
  /** append EOS to completions and language-modelling text (see the rules above). Default true. */
  addEos?: boolean;
  /** conversational language modelling: also compute assistant masks (TRL's assistant_only_loss). Default false. */
  assistantMasks?: boolean;
  /** a chat template (name or template text) instead of the tokenizer's default */
  chatTemplate?: string;
  /** tool schemas passed to the chat template */
  tools?: unknown[];
  /**
   * a row longer than the limits: 'truncate' it (default; counted in the report), or 'reject' it as a DataError
   * with code 'truncated' (with skipInvalid: a counted skip, TRL's reward-trainer filter made visible)
   */
  overlong?: 'truncate' | 'reject';
}

/** A single training sequence (SFT): language modelling, or prompt + completion. */
export interface SequenceExample {
  kind: 'sequence';
  ids: Int32Array;
  /** 1 on completion tokens (the loss positions; all tokens for language modelling), 0 on prompt tokens */
  completionMask: Uint8Array;
  /** conversational language modelling with assistantMasks: 1 on the tokens of assistant turns */
  assistantMask?: Uint8Array;
  /** leading prompt tokens (0 for language modelling) */
  promptLength: number;
  source: Source;
  truncated: boolean;
}

/** A preference pair: sequences promptIds ++ chosenIds and promptIds ++ rejectedIds. */
export interface PreferenceExample {
  kind: 'preference';
  promptIds: Int32Array;
  /** the chosen completion's ids (EOS included) */
  chosenIds: Int32Array;
  rejectedIds: Int32Array;
  source: Source;
  truncated: boolean;
}

/** A prompt to generate from (PPO, online methods). */
export interface PromptExample {
  kind: 'prompt';
  promptIds: Int32Array;
  /** the prompt column as given (string or messages) */
  prompt: Content;
  /** the prompt's text (the chat template's rendering for conversational prompts) */
  promptText: string;
  source: Source;
  truncated: boolean;
}

export type Example = SequenceExample | PreferenceExample | PromptExample;

const startsWith = (ids: ArrayLike<number>, prefix: readonly number[]) => prefix.length <= ids.length && prefix.every((v, i) => ids[i] === v);

/** Ids that the tokenizer's post-processor puts before a text (e.g. [BOS] for Llama, [] for GPT-2). */
export function leadingSpecialIds(tokenizer: Tokenizer): number[] {
  const enc = tokenizer.encodeWithOffsets('a', { addSpecialTokens: true });
  const out: number[] = [];
  for (let i = 0; i < enc.ids.length && enc.specialTokensMask[i] === 1; i++) out.push(enc.ids[i]);
  return out;
}

/** The pad id used for batches: the tokenizer's pad token, else EOS, else 0. */
export function padTokenId(tokenizer: Tokenizer): number {
  return tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
}

/** Tokenises validated records with fixed options (the BOS/EOS decisions are made once per tokenizer). */
export class RecordTokenizer {
  readonly tokenizer: Tokenizer;
  readonly options: Readonly<TokenizeOptions>;
  /** what is put before every sequence's first token (usually [] or [BOS]) */
  readonly bosIds: readonly number[];
  /** appended to completions; null when addEos is false */
  readonly eosId: number | null;

  constructor(tokenizer: Tokenizer, opts: TokenizeOptions = {}) {
    checkTruncationOptions(opts);
    this.tokenizer = tokenizer;
    this.options = { ...opts };
    if (opts.addBos === undefined) this.bosIds = leadingSpecialIds(tokenizer);
    else if (opts.addBos) {
      const b = tokenizer.bosTokenId;
      if (b === undefined) throw new Error('addBos: true, but the tokenizer has no bos_token');
      this.bosIds = [b];
    } else this.bosIds = [];
    if (opts.addEos ?? true) {
      const e = tokenizer.eosTokenId;
      if (e === undefined) throw new Error('the tokenizer has no eos_token to end completions with; set one in tokenizer_config.json or pass addEos: false');
      this.eosId = e;
    } else this.eosId = null;
  }

  /** Tokenises any record: sequences for language modelling and prompt-completion, pairs for preference, prompts for prompt-only. */
  tokenize(rec: ValidRecord): Example {
    switch (rec.type) {
      case 'language_modeling':
      case 'prompt_completion':
        return this.sequence(rec);
      case 'preference':
        return this.preference(rec);
      case 'prompt_only':
        return this.prompt(rec);
    }
  }

  // ------------------------------------------------------------------ pieces

  private withBos(ids: number[]): number[] {
    return this.bosIds.length && !startsWith(ids, this.bosIds as number[]) ? [...this.bosIds, ...ids] : ids;
  }

  /** Appends EOS unless already there (standard: as the last id; conversational: anywhere in the completion). */
  private withEos(ids: number[], conversational: boolean): { ids: number[]; added: boolean } {
    const e = this.eosId;
    if (e === null) return { ids, added: false };
    const present = conversational ? ids.includes(e) : ids.length > 0 && ids[ids.length - 1] === e;
    return present ? { ids, added: false } : { ids: [...ids, e], added: true };
  }

  private encode(text: string): number[] {
    return this.tokenizer.encode(text, { addSpecialTokens: false });
  }

  private render(messages: Message[], field: string, where: Source, opts: { generation?: boolean }): string {
    const last = messages[messages.length - 1];
    const cont = opts.generation === true && last?.role === 'assistant';
    try {
      return this.tokenizer.applyChatTemplate(messages as ChatMessage[], {
        addGenerationPrompt: opts.generation === true && !cont,
        continueFinalMessage: cont,
        chatTemplate: this.options.chatTemplate,
        tools: this.options.tools,
      });
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(where, field, 'template', `the chat template failed: ${(e as Error).message}`);
    }
  }

  /** Prompt text and ids (BOS applied). */
  private promptPart(prompt: Content, where: Source): { text: string; ids: number[] } {
    const text = typeof prompt === 'string' ? prompt : this.render(prompt, 'prompt', where, { generation: true });
    return { text, ids: this.withBos(this.encode(text)) };
  }

  /** A completion's ids (EOS applied): for conversations, the rendering of prompt + completion after the prompt's rendering. */
  private completionPart(prompt: Content, promptText: string, completion: Content, field: string, where: Source): number[] {
    if (typeof completion === 'string') return this.withEos(this.encode(completion), false).ids;
    const full = this.render([...(prompt as Message[]), ...completion], field, where, {});
    if (!full.startsWith(promptText)) {
      throw new DataError(
        where,
        field,
        'template',
        `the chat template's rendering of prompt + ${field} does not start with its rendering of the prompt (with the generation prompt), so the ${field} cannot be separated; ` +
          `prompt renders as ${JSON.stringify(clip(promptText))}, prompt + ${field} as ${JSON.stringify(clip(full))}`,
      );
    }
    const rest = full.slice(promptText.length);
    if (rest.length === 0) throw new DataError(where, field, 'empty', `the chat template renders the ${field} as nothing`);
    return this.withEos(this.encode(rest), true).ids;
  }

  private truncationError(where: Source, field: string, promptTokens: number): DataError {
    const o = this.options;
    const lim = [o.maxLength != null ? `max_length ${o.maxLength}` : '', o.maxCompletionLength != null ? `max_completion_length ${o.maxCompletionLength}` : ''].filter(Boolean).join(', ');
    return new DataError(where, field, 'truncated', `no ${field} token is left after truncation (prompt of ${promptTokens} tokens, ${lim}, truncation_mode ${o.truncationMode ?? 'keep_start'})`);
  }

  /** With overlong: 'reject', a plan that cuts anything is an error. */
  private checkOverlong(truncated: boolean, where: Source, field: string, lengths: string): void {
    if (!truncated || this.options.overlong !== 'reject') return;
    const o = this.options;
    const lim = [
      o.maxLength != null ? `max_length ${o.maxLength}` : '',
      o.maxPromptLength != null ? `max_prompt_length ${o.maxPromptLength}` : '',
      o.maxCompletionLength != null ? `max_completion_length ${o.maxCompletionLength}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    throw new DataError(where, field, 'truncated', `the row (${lengths}) is longer than the limits (${lim}) and overlong is 'reject'`);
  }

  // ------------------------------------------------------------------ examples

  /** A training sequence from language-modelling or prompt-completion data. */
  sequence(rec: LanguageModelingRecord | PromptCompletionRecord): SequenceExample {
    const where = rec.source;
    if (rec.type === 'language_modeling') return this.lmSequence(rec);
    const p = this.promptPart(rec.prompt, where);
    const c = this.completionPart(rec.prompt, p.text, rec.completion, 'completion', where);
    const plan = planTruncation(p.ids.length, [c.length], this.options);
    this.checkOverlong(plan.truncated, where, 'completion', `prompt ${p.ids.length} + completion ${c.length} tokens`);
    const ps = plan.prompt,
      cs = plan.completions[0];
    if (cs.end <= cs.start) throw this.truncationError(where, 'completion', ps.end - ps.start);
    const np = ps.end - ps.start,
      nc = cs.end - cs.start;
    const ids = new Int32Array(np + nc);
    ids.set(p.ids.slice(ps.start, ps.end), 0);
    ids.set(c.slice(cs.start, cs.end), np);
    const completionMask = new Uint8Array(np + nc);
    completionMask.fill(1, np);
    return { kind: 'sequence', ids, completionMask, promptLength: np, source: where, truncated: plan.truncated };
  }

  private lmSequence(rec: LanguageModelingRecord): SequenceExample {
    const where = rec.source;
    let ids: number[];
    let amask: number[] | undefined;
    if (typeof rec.text === 'string') {
      ids = this.withEos(this.withBos(this.encode(rec.text)), false).ids;
    } else {
      const messages = rec.text;
      if (this.options.assistantMasks) {
        let r;
        try {
          r = this.tokenizer.applyChatTemplate(messages as ChatMessage[], { returnAssistantMask: true, chatTemplate: this.options.chatTemplate, tools: this.options.tools });
        } catch (e) {
          throw new DataError(where, 'messages', 'template', `the chat template failed: ${(e as Error).message}`);
        }
        ids = r.inputIds;
        amask = r.assistantMask;
        if (!amask.includes(1)) {
          throw new DataError(
            where,
            'messages',
            'template',
            'assistant masks were asked for, but no token is marked as assistant output (no assistant message, or the template lacks {% generation %} markers and does not render prefix by prefix)',
          );
        }
      } else ids = this.encode(this.render(messages, 'messages', where, {}));
      if (ids.length === 0) throw new DataError(where, 'messages', 'empty', 'the chat template renders the conversation as nothing');
      const withB = this.withBos(ids);
      if (amask && withB.length > ids.length) amask = [...new Array<number>(withB.length - ids.length).fill(0), ...amask];
      const withE = this.withEos(withB, true);
      if (amask && withE.added) amask = [...amask, messages[messages.length - 1].role === 'assistant' ? 1 : 0];
      ids = withE.ids;
    }
    const plan = planTruncation(0, [ids.length], this.options);
    this.checkOverlong(plan.truncated, where, typeof rec.text === 'string' ? 'text' : 'messages', `${ids.length} tokens`);
    const s = plan.completions[0];
    const out: SequenceExample = {
      kind: 'sequence',
      ids: Int32Array.from(ids.slice(s.start, s.end)),
      completionMask: new Uint8Array(s.end - s.start).fill(1),
      promptLength: 0,
      source: where,
      truncated: plan.truncated,
    };
    if (amask) out.assistantMask = Uint8Array.from(amask.slice(s.start, s.end));
    return out;
  }

  /** A preference pair; the prompt is tokenised once and shared. */
  preference(rec: PreferenceRecord): PreferenceExample {
    const where = rec.source;
    const p = this.promptPart(rec.prompt, where);
    const c = this.completionPart(rec.prompt, p.text, rec.chosen, 'chosen', where);
    const r = this.completionPart(rec.prompt, p.text, rec.rejected, 'rejected', where);
    const plan = planTruncation(p.ids.length, [c.length, r.length], this.options);
    this.checkOverlong(plan.truncated, where, c.length >= r.length ? 'chosen' : 'rejected', `prompt ${p.ids.length} + chosen ${c.length} / rejected ${r.length} tokens`);
    const ps = plan.prompt;
    const [cs, rs] = plan.completions;
    if (cs.end <= cs.start) throw this.truncationError(where, 'chosen', ps.end - ps.start);
    if (rs.end <= rs.start) throw this.truncationError(where, 'rejected', ps.end - ps.start);
    const cut = (a: number[], s: Span) => Int32Array.from(a.slice(s.start, s.end));
    const chosenIds = cut(c, cs),
      rejectedIds = cut(r, rs);
    if (chosenIds.length === rejectedIds.length && chosenIds.every((v, i) => v === rejectedIds[i])) {
      throw new DataError(where, 'rejected', 'identical_pair', plan.truncated ? 'chosen and rejected are identical after truncation' : 'chosen and rejected tokenise to the same ids');
    }
    return { kind: 'preference', promptIds: cut(p.ids, ps), chosenIds, rejectedIds, source: where, truncated: plan.truncated };
  }

  /** A prompt to generate from (any record with a prompt; max_prompt_length applies). */
  prompt(rec: ValidRecord & { prompt: Content }): PromptExample {
    const where = rec.source;
    const p = this.promptPart(rec.prompt, where);
    const plan = planTruncation(p.ids.length, [], this.options);
    this.checkOverlong(plan.truncated, where, 'prompt', `prompt ${p.ids.length} tokens`);
    const ps = plan.prompt;
    if (ps.end <= ps.start) throw new DataError(where, 'prompt', 'truncated', `no prompt token is left after truncation (max_prompt_length ${String(this.options.maxPromptLength)})`);
    return { kind: 'prompt', promptIds: Int32Array.from(p.ids.slice(ps.start, ps.end)), prompt: rec.prompt, promptText: p.text, source: where, truncated: plan.truncated };
  }
}

function clip(s: string, n = 200): string {
  return s.length <= n ? s : `${s.slice(0, n / 2)}…${s.slice(-n / 2)}`;
}
