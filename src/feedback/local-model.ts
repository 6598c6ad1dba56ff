// The local backend of TextModel: a Hugging Face checkpoint (or a loaded model and tokenizer) on alignkit's
// engine. Generation is batched (requests with the same sampling settings decode together, each row with its own
// seeded generator, so a request's sample does not depend on its batch); option log-probabilities are exact: one
// batched forward pass over every prompt + option, summing the log-probabilities of the option's tokens from the
// first token where the options' tokenisations part from the prompt's.
import { Random } from '../engine/random.js';
import { noGrad, tidy } from '../engine/tensor.js';
import { type Pretrained, eosTokenIds, loadPretrained } from '../io/pretrained.js';
import { generate } from '../models/generate.js';
import { nextTokenLogprobs } from '../models/heads.js';
import { Tokenizer } from '../tokenizer/index.js';
import type { ChoiceRequest, Generation, GenerationRequest, Prompt, TextModel } from './text-model.js';

export interface LocalModelOptions {
  /** rows per decode batch (default 32) */
  batchSize?: number;
  /** rows per scoring forward pass (default 32) */
  scoreBatchSize?: number;
  /** called with the number of new tokens after every batch (progress) */
  onTokens?: (n: number) => void;
}

/** Seeds a request's generator from its seed (a stable mix, so nearby seeds give unrelated streams). */
function rowRng(seed: number): Random {
  return new Random(Math.imul((seed >>> 0) ^ 0x5bd1e995, 0x27d4eb2d) >>> 0);
}

export class LocalTextModel implements TextModel {
  readonly chat: boolean;
  private readonly eos: number[];
  private readonly owned: boolean;
  /** prompts cut from the left to fit the context (counted, never silent) */
  truncatedPrompts = 0;

  constructor(
    readonly pretrained: Pretrained,
    readonly tokenizer: Tokenizer,
    readonly id: string,
    private readonly o: LocalModelOptions & { owned?: boolean } = {},
  ) {
    this.chat = tokenizer.chatTemplate !== null && tokenizer.chatTemplate !== undefined;
    this.eos = eosTokenIds(pretrained, tokenizer.eosTokenId).ids;
    this.owned = o.owned ?? false;
    if (tokenizer.vocabSize > pretrained.model.config.vocabSize)
      throw new Error(`${id}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${pretrained.model.config.vocabSize}`);
  }

  /** Loads a Hugging Face model folder (with its tokenizer, or a PEFT adapter folder). */
  static load(dir: string, o: LocalModelOptions = {}): LocalTextModel {
    return new LocalTextModel(loadPretrained(dir), Tokenizer.fromPretrained(dir), dir, { ...o, owned: true });
  }

  private get context(): number {
    return this.pretrained.model.config.maxPositions;
  }

  /** Token ids of a prompt (chat template for conversations; special tokens as the tokenizer adds them). */
  encode(prompt: Prompt): number[] {
    if (typeof prompt === 'string') return this.tokenizer.encode(prompt, { addSpecialTokens: true });
    return this.tokenizer.applyChatTemplate([...prompt], { addGenerationPrompt: true, tokenize: true }) as number[];
  }

  /** Keeps the end of a prompt that leaves no room for `room` new tokens (counted in truncatedPrompts). */
  private fit(ids: number[], room: number): number[] {
    const max = this.context - room;
    if (max < 1) throw new Error(`${this.id}: ${room} new tokens do not fit the model's context of ${this.context} positions`);
    if (ids.length <= max) return ids;
    this.truncatedPrompts++;
    return ids.slice(ids.length - max);
  }

  async generate(requests: readonly GenerationRequest[]): Promise<Generation[]> {
    const out: Generation[] = new Array(requests.length);
    // requests with the same sampling settings decode together
    const groups = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const key = JSON.stringify([r.maxTokens, r.temperature, r.topP ?? 1, r.stop ?? []]);
      (groups.get(key) ?? groups.set(key, []).get(key)!).push(i);
    });
    const bs = this.o.batchSize ?? 32;
    const m = this.pretrained.model;
    for (const idx of groups.values()) {
      for (let s = 0; s < idx.length; s += bs) {
        const rows = idx.slice(s, s + bs);
        const r0 = requests[rows[0]!]!;
        const maxNew = Math.min(r0.maxTokens, this.context - 1);
        const prompts = rows.map((i) => this.fit(this.encode(requests[i]!.prompt), maxNew));
        const room = Math.min(maxNew, this.context - Math.max(...prompts.map((p) => p.length)));
        const stop = r0.stop?.length ? [...r0.stop] : undefined;
        const g = m.evalMode(() =>
          generate(m, prompts, {
            maxNewTokens: room,
            temperature: r0.temperature,
            topP: r0.topP !== undefined && r0.topP < 1 ? r0.topP : undefined,
            eosTokenId: this.eos,
            padTokenId: this.tokenizer.padTokenId ?? this.eos[0] ?? 0,
            rng: rows.map((i) => rowRng(requests[i]!.seed ?? i)),
            stopStrings: stop,
            decode: stop ? (t) => this.tokenizer.decode(t, { skipSpecialTokens: true }) : undefined,
          }),
        );
        let n = 0;
        rows.forEach((i, k) => {
          let text = this.tokenizer.decode(g.tokens[k]!, { skipSpecialTokens: true });
          if (stop) {
            const cut = Math.min(...stop.map((x) => text.indexOf(x)).filter((j) => j >= 0));
            if (Number.isFinite(cut)) text = text.slice(0, cut);
          }
          out[i] = { text, finishReason: g.finishReason[k] === 'length' ? 'length' : 'stop', tokens: g.tokens[k]!.length };
          n += g.tokens[k]!.length;
        });
        this.o.onTokens?.(n);
      }
    }
    return out;
  }

  async choiceLogprobs(requests: readonly ChoiceRequest[]): Promise<number[][]> {
    // one row per (request, option): the ids of prompt + option, and where the option's tokens start
    const rows: { req: number; ids: number[]; from: number }[] = [];
    for (let r = 0; r < requests.length; r++) {
      const { prompt, options } = requests[r]!;
      if (!options.length) throw new Error('choiceLogprobs: no options');
      const base = this.encode(prompt);
      const full = options.map((o) => (typeof prompt === 'string' ? this.encode(prompt + o) : [...base, ...this.tokenizer.encode(o, { addSpecialTokens: false })]));
      // the first position where any option's tokenisation leaves the prompt's (a merge across the boundary)
      let from = base.length;
      for (const ids of full) {
        let k = 0;
        while (k < base.length && k < ids.length && ids[k] === base[k]) k++;
        from = Math.min(from, k);
      }
      for (const ids of full) {
        if (ids.length <= from) throw new Error(`choiceLogprobs: an option adds no token after the prompt (${JSON.stringify(options)})`);
        const keep = this.fit(ids, 0);
        rows.push({ req: r, ids: keep, from: from - (ids.length - keep.length) });
      }
    }
    const scores = new Float64Array(rows.length);
    const bs = this.o.scoreBatchSize ?? 32;
    const m = this.pretrained.model;
    const pad = this.tokenizer.padTokenId ?? this.eos[0] ?? 0;
    for (let s = 0; s < rows.length; s += bs) {
      const chunk = rows.slice(s, s + bs);
      const B = chunk.length,
        T = Math.max(...chunk.map((c) => c.ids.length));
      const ids = new Int32Array(B * T).fill(pad),
        mask = new Int32Array(B * T);
      chunk.forEach((c, b) => c.ids.forEach((id, t) => ((ids[b * T + t] = id), (mask[b * T + t] = 1))));
      const lp = noGrad(() => tidy(() => m.evalMode(() => nextTokenLogprobs(m.forward(ids, B, T, { attentionMask: mask }), ids, B, T).toArray())));
      chunk.forEach((c, b) => {
        let sum = 0;
        // position t holds log p(ids[t+1] | ids[..t]): the option's tokens are ids[from..]
        for (let t = Math.max(0, c.from - 1); t < c.ids.length - 1; t++) sum += lp[b * T + t]!;
        scores[s + b] = sum;
      });
    }
    const out: number[][] = requests.map(() => []);
    rows.forEach((r, i) => out[r.req]!.push(scores[i]!));
    return out;
  }

  dispose(): void {
    if (!this.owned) return;
    this.pretrained.model.dispose();
    this.pretrained.score?.dispose();
  }
}
