// The HTTP backend of TextModel: any OpenAI-compatible server — llama.cpp's server, vLLM, ollama, alignkit serve
// or a hosted API — named `openai:http://127.0.0.1:8080/v1`, through the official `openai` client (retries with
// backoff on 429 and 5xx honouring Retry-After, timeouts), with a limit on requests in flight. Text prompts go to
// /v1/completions, conversations to /v1/chat/completions. Option log-probabilities come from the top
// log-probabilities of the first generated token (`logprobs` on completions, `logprobs` + `top_logprobs` on chat),
// so options must be single tokens such as `A` and `B`; a server that returns none, or options missing from its
// top tokens, is a clear error rather than a guess.
import OpenAI from 'openai';
import type { ChoiceRequest, Generation, GenerationRequest, Prompt, TextModel } from './text-model.js';

export interface OpenAIModelOptions {
  /** the server's base URL, e.g. http://127.0.0.1:8080/v1 */
  baseURL: string;
  /** the model name the server knows (default: the first of GET /v1/models) */
  model?: string | null;
  /** default: $ALIGNKIT_API_KEY, else $OPENAI_API_KEY, else none */
  apiKey?: string | null;
  /** requests in flight at once (default 8) */
  concurrency?: number;
  /** retries of a request that failed with 429, 5xx, a timeout or a lost connection (default 3) */
  maxRetries?: number;
  /** milliseconds before a request is abandoned (default 60 000) */
  timeoutMs?: number;
  /** how many top tokens to ask for when reading option log-probabilities (default 20) */
  topLogprobs?: number;
  /** the server renders conversations (chat completions); text prompts still use completions */
  chat?: boolean;
}

/** Runs at most `n` tasks at once. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** Log of the summed probability of the top tokens that spell `option` (ignoring spaces and an opening bracket). */
function optionLogprob(top: readonly { token: string; logprob: number }[], option: string): number | null {
  const hits = top.filter((t) => t.token.trim().replace(/^\(/, '') === option);
  if (!hits.length) return null;
  const m = Math.max(...hits.map((h) => h.logprob));
  return m + Math.log(hits.reduce((s, h) => s + Math.exp(h.logprob - m), 0));
}

export class OpenAITextModel implements TextModel {
  readonly id: string;
  readonly chat: boolean;
  private readonly client: OpenAI;
  private readonly limit: Limiter;
  private model: string | null;

  constructor(private readonly o: OpenAIModelOptions) {
    if (!/^https?:\/\//.test(o.baseURL)) throw new Error(`openai backend: ${o.baseURL} is not an http(s) URL`);
    this.model = o.model ?? null;
    this.chat = o.chat ?? false;
    this.id = `openai:${o.baseURL}${this.model ? `#${this.model}` : ''}`;
    this.client = new OpenAI({
      baseURL: o.baseURL,
      apiKey: o.apiKey ?? process.env.ALIGNKIT_API_KEY ?? process.env.OPENAI_API_KEY ?? 'none',
      maxRetries: o.maxRetries ?? 3,
      timeout: o.timeoutMs ?? 60_000,
    });
    this.limit = new Limiter(Math.max(1, o.concurrency ?? 8));
  }

  /** The model name to send (asks the server once when none was given). */
  private async modelName(): Promise<string> {
    if (this.model) return this.model;
    const list = await this.call('GET /models', () => this.client.models.list());
    const first = list.data[0]?.id;
    if (!first) throw new Error(`${this.id}: the server lists no models; give the model name`);
    this.model = first;
    return first;
  }

  /** One request, with the error turned into a sentence naming the server. */
  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await this.limit.run(f);
    } catch (e) {
      if (e instanceof OpenAI.APIConnectionTimeoutError) throw new Error(`${this.id}: ${what} timed out after ${this.o.timeoutMs ?? 60_000} ms (and ${this.o.maxRetries ?? 3} retries)`, { cause: e });
      if (e instanceof OpenAI.APIConnectionError) throw new Error(`${this.id}: ${what}: cannot reach the server (${(e.cause as Error | undefined)?.message ?? e.message})`, { cause: e });
      if (e instanceof OpenAI.APIError) throw new Error(`${this.id}: ${what} failed with HTTP ${e.status}: ${e.message}`, { cause: e });
      throw e;
    }
  }

  async generate(requests: readonly GenerationRequest[]): Promise<Generation[]> {
    const model = await this.modelName();
    return Promise.all(requests.map((r) => this.one(model, r)));
  }

  private async one(model: string, r: GenerationRequest): Promise<Generation> {
    const common = { model, max_tokens: r.maxTokens, temperature: r.temperature, top_p: r.topP, stop: r.stop?.length ? [...r.stop] : undefined, seed: r.seed };
    if (typeof r.prompt === 'string') {
      const prompt = r.prompt;
      const res = await this.call('POST /completions', () => this.client.completions.create({ ...common, prompt }));
      const c = res.choices[0];
      if (!c) throw new Error(`${this.id}: /completions returned no choice`);
      return { text: c.text, finishReason: c.finish_reason === 'length' ? 'length' : 'stop', tokens: res.usage?.completion_tokens ?? 0 };
    }
    const messages = r.prompt as unknown as OpenAI.Chat.ChatCompletionMessageParam[];
    const res = await this.call('POST /chat/completions', () => this.client.chat.completions.create({ ...common, messages }));
    const c = res.choices[0];
    if (!c) throw new Error(`${this.id}: /chat/completions returned no choice`);
    return { text: c.message.content ?? '', finishReason: c.finish_reason === 'length' ? 'length' : 'stop', tokens: res.usage?.completion_tokens ?? 0 };
  }

  async choiceLogprobs(requests: readonly ChoiceRequest[]): Promise<number[][]> {
    const model = await this.modelName();
    return Promise.all(requests.map((r) => this.choice(model, r.prompt, r.options)));
  }

  private async choice(model: string, prompt: Prompt, options: readonly string[]): Promise<number[]> {
    const k = this.o.topLogprobs ?? 20;
    let top: { token: string; logprob: number }[];
    if (typeof prompt === 'string') {
      const res = await this.call('POST /completions', () => this.client.completions.create({ model, prompt, max_tokens: 1, temperature: 0, logprobs: k }));
      const t = res.choices[0]?.logprobs?.top_logprobs?.[0];
      if (!t) throw new Error(`${this.id}: the server returned no log-probabilities on /completions (it must support "logprobs"); AI feedback needs them`);
      top = Object.entries(t).map(([token, logprob]) => ({ token, logprob }));
    } else {
      const messages = prompt as unknown as OpenAI.Chat.ChatCompletionMessageParam[];
      const res = await this.call('POST /chat/completions', () => this.client.chat.completions.create({ model, messages, max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: k }));
      const t = res.choices[0]?.logprobs?.content?.[0]?.top_logprobs;
      if (!t || !t.length) throw new Error(`${this.id}: the server returned no log-probabilities on /chat/completions (it must support "logprobs" and "top_logprobs"); AI feedback needs them`);
      top = t.map((x) => ({ token: x.token, logprob: x.logprob }));
    }
    return options.map((opt) => {
      const lp = optionLogprob(top, opt);
      if (lp === null)
        throw new Error(
          `${this.id}: option ${JSON.stringify(opt)} is not among the top ${top.length} tokens the server returned (${top
            .slice(0, 8)
            .map((t) => JSON.stringify(t.token))
            .join(', ')}…); the model does not answer in the question's format`,
        );
      return lp;
    });
  }

  dispose(): void {}
}
