// POST /v1/chat/completions and /v1/completions: a checked request (schema.ts) becomes prompt token ids (the chat
// template, or the prompt text or ids), the lengths are checked against the context, one engine job runs per
// prompt (n choices each), and the tokens come back as OpenAI's response or as its server-sent event chunks
// ending with `data: [DONE]`. Log-probabilities are those of the model's own distribution (temperature 1, before
// top-k/top-p). A client that goes away cancels its jobs at once; the time limit and a shutdown end a request
// early with what it has (finish_reason "length").
import { randomBytes, randomInt } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ChoiceText } from './detok.js';
import type { Engine, JobHandle } from './engine.js';
import type { ServedModel } from './models.js';
import type { Finish, SamplingParams } from './protocol.js';
import { ApiError, type ChatRequest, type CompletionRequest, parseChatRequest, parseCompletionRequest } from './schema.js';

export interface GenerationLimits {
  /** new tokens one request may ask for (also the default of chat requests) */
  maxTokens: number;
  /** requests waiting for a place in the batch before new ones get 429 */
  maxQueue: number;
  /** a request ends after this long, ms */
  requestTimeoutMs: number;
  maxN: number;
}

interface GenerationDeps {
  engine: Engine;
  models: ReadonlyMap<string, ServedModel>;
  limits: GenerationLimits;
  /** registers a running request's early end (shutdown); returns the unregister function */
  track(abort: () => void): () => void;
  /** writes an error response (before anything was sent) */
  fail(res: ServerResponse, e: ApiError): void;
}

type Kind = 'chat' | 'completion';

/** One output sequence: prompt p's choice c, index p·n + c in the response. */
interface Seq {
  index: number;
  prompt: number;
  choice: number;
  text: ChoiceText;
  lps: number[];
  tops: ([number, number][] | null)[];
  finish: 'stop' | 'length' | null;
  /** chat stream: the first chunk (role) was sent */
  opened: boolean;
}

const DEFAULT_COMPLETION_TOKENS = 16;

function tokenText(m: ServedModel, id: number): string {
  return m.tok.decode([id]);
}

function chatLogprob(m: ServedModel, id: number, lp: number, top: [number, number][] | null) {
  const token = tokenText(m, id);
  return {
    token,
    logprob: lp,
    bytes: [...Buffer.from(token, 'utf8')],
    top_logprobs: (top ?? []).map(([t, l]) => {
      const s = tokenText(m, t);
      return { token: s, logprob: l, bytes: [...Buffer.from(s, 'utf8')] };
    }),
  };
}

interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

function completionLogprobs(m: ServedModel, ids: readonly number[], lps: readonly (number | null)[], tops: readonly ([number, number][] | null)[], k: number, offset0: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let off = offset0;
  ids.forEach((id, i) => {
    const s = tokenText(m, id);
    out.tokens.push(s);
    out.token_logprobs.push(lps[i] ?? null);
    const top = tops[i];
    if (lps[i] === null || lps[i] === undefined) out.top_logprobs.push(null);
    else {
      const d: Record<string, number> = {};
      for (const [t, l] of (top ?? []).slice(0, k)) {
        const ts = tokenText(m, t);
        if (!(ts in d)) d[ts] = l;
      }
      if (k > 0 && !(s in d)) d[s] = lps[i]!;
      out.top_logprobs.push(d);
    }
    out.text_offset.push(off);
    off += s.length;
  });
  return out;
}

export async function handleGeneration(kind: Kind, body: unknown, deps: GenerationDeps, res: ServerResponse): Promise<void> {
  const { engine, limits } = deps;
  const req: ChatRequest | CompletionRequest = kind === 'chat' ? parseChatRequest(body, { maxN: limits.maxN }) : parseCompletionRequest(body, { maxN: limits.maxN });
  const model = deps.models.get(req.model);
  if (!model) throw new ApiError(404, `the model ${JSON.stringify(req.model)} does not exist (served: ${[...deps.models.keys()].join(', ')})`, 'invalid_request_error', 'model', 'model_not_found');
  const ctx = model.info.contextLength;

  // prompts → token ids
  let prompts: number[][];
  if (kind === 'chat') {
    if (!model.hasChatTemplate)
      throw new ApiError(
        400,
        `the model ${model.name} has no chat template (its tokenizer_config.json has no chat_template and there is no chat_template.jinja), so it cannot render messages; use /v1/completions with a prompt`,
        'invalid_request_error',
        'messages',
        'no_chat_template',
      );
    try {
      prompts = [model.tok.applyChatTemplate((req as ChatRequest).messages, { addGenerationPrompt: true, tokenize: true })];
    } catch (e) {
      throw new ApiError(400, `messages: the chat template failed: ${(e as Error).message}`, 'invalid_request_error', 'messages');
    }
  } else {
    prompts = (req as CompletionRequest).prompts.map((p) => {
      if (typeof p !== 'string') {
        for (const id of p)
          if (id >= model.info.vocabSize) throw new ApiError(400, `prompt: token id ${id} is outside the vocabulary (0 … ${model.info.vocabSize - 1})`, 'invalid_request_error', 'prompt');
        return p;
      }
      const ids = model.tok.encode(p);
      if (ids.length) return ids;
      const bos = model.tok.bosTokenId ?? model.stopIds[0];
      if (bos === undefined) throw new ApiError(400, 'prompt: the prompt encodes to no tokens and the tokenizer has no BOS token to start from', 'invalid_request_error', 'prompt');
      return [bos];
    });
  }
  const longest = Math.max(...prompts.map((p) => p.length));
  if (longest >= ctx)
    throw new ApiError(
      400,
      `the prompt is ${longest} tokens, and the model's context is ${ctx} tokens: nothing is left to generate`,
      'invalid_request_error',
      kind === 'chat' ? 'messages' : 'prompt',
      'context_length_exceeded',
    );
  let maxTokens: number;
  if (req.maxTokens !== null) {
    maxTokens = req.maxTokens;
    if (maxTokens > limits.maxTokens) throw new ApiError(400, `max_tokens: ${maxTokens} is more than this server allows (${limits.maxTokens}, --max-tokens)`, 'invalid_request_error', 'max_tokens');
    if (longest + maxTokens > ctx)
      throw new ApiError(
        400,
        `the prompt (${longest} tokens) plus max_tokens (${maxTokens}) is ${longest + maxTokens} tokens, more than the model's context of ${ctx} tokens`,
        'invalid_request_error',
        'max_tokens',
        'context_length_exceeded',
      );
  } else maxTokens = Math.min(kind === 'chat' ? limits.maxTokens : DEFAULT_COMPLETION_TOKENS, ctx - longest);
  const echo = kind === 'completion' && (req as CompletionRequest).echo;
  const k = kind === 'chat' ? ((req as ChatRequest).logprobs ? (req as ChatRequest).topLogprobs : null) : (req as CompletionRequest).logprobs;
  if (engine.failure) throw new ApiError(503, `the engine is not running: ${engine.failure}`, 'server_error');
  if (engine.queued >= limits.maxQueue)
    throw new ApiError(
      429,
      `the server is busy: ${engine.queued} requests are waiting for a place in the batch (limit ${limits.maxQueue}); retry shortly`,
      'rate_limit_error',
      null,
      'rate_limit_exceeded',
      { 'Retry-After': '1' },
    );

  const seed = req.seed === null ? randomInt(0, 2 ** 31) : ((req.seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
  const params: SamplingParams = {
    maxTokens,
    temperature: req.temperature,
    topP: req.topP,
    topK: req.topK,
    seed,
    n: req.n,
    logprobs: k,
    promptLogprobs: echo && k !== null,
    stopIds: model.stopIds,
  };
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
  const skip = new Set(model.stopIds);
  const seqs: Seq[] = [];
  prompts.forEach((_, p) => {
    for (let c = 0; c < req.n; c++) seqs.push({ index: p * req.n + c, prompt: p, choice: c, text: new ChoiceText(model.tok, req.stop, skip), lps: [], tops: [], finish: null, opened: false });
  });
  const promptLp: { lps: (number | null)[]; tops: ([number, number][] | null)[] }[] = prompts.map(() => ({ lps: [], tops: [] }));
  const promptText = prompts.map((p, i) => {
    const given = kind === 'completion' ? (req as CompletionRequest).prompts[i] : undefined;
    return typeof given === 'string' ? given : model.tok.decode(p);
  });

  const stream = req.stream;
  const write = (obj: unknown): void => {
    if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(obj)}\n\n`);
  };
  const chunk = (choices: unknown[]): void => write({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: model.name, choices });
  if (stream) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', Connection: 'keep-alive' });
    res.flushHeaders();
  }

  const handles: JobHandle[] = [];
  let finished = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const usage = () => {
    const completion = seqs.reduce((s, q) => s + q.text.tokens.length, 0);
    const prompt = prompts.reduce((s, p) => s + p.length, 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  };
  /** Generated tokens to report: all accepted ones but a final EOS. */
  const reported = (q: Seq): number => {
    const t = q.text.tokens;
    return t.length && skip.has(t[t.length - 1]!) ? t.length - 1 : t.length;
  };

  const openChat = (q: Seq): void => {
    if (kind !== 'chat' || q.opened) return;
    q.opened = true;
    chunk([{ index: q.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
  };

  const finishSeq = (q: Seq, reason: 'stop' | 'length'): void => {
    if (q.finish) return;
    q.finish = reason;
    if (stream) {
      const rest = q.text.flush();
      if (kind === 'chat') {
        openChat(q);
        if (rest) chunk([{ index: q.index, delta: { content: rest }, logprobs: null, finish_reason: null }]);
        chunk([{ index: q.index, delta: {}, logprobs: null, finish_reason: reason }]);
      } else chunk([{ index: q.index, text: rest, logprobs: null, finish_reason: reason }]);
    } else q.text.flush();
    if (seqs.every((s) => s.finish)) complete();
  };

  const complete = (): void => {
    if (finished) return;
    finished = true;
    untrack();
    clearTimeout(timer);
    if (stream) {
      if (req.includeUsage) write({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: model.name, choices: [], usage: usage() });
      if (!res.writableEnded && !res.destroyed) res.end('data: [DONE]\n\n');
      resolveDone();
      return;
    }
    const choices = seqs.map((q) => {
      const n = reported(q);
      if (kind === 'chat') {
        const logprobs = k === null ? null : { content: q.text.tokens.slice(0, n).map((t, i) => chatLogprob(model, t, q.lps[i]!, q.tops[i] ?? null)), refusal: null };
        return { index: q.index, message: { role: 'assistant', content: q.text.fullText, refusal: null }, logprobs, finish_reason: q.finish };
      }
      const pre = echo ? promptText[q.prompt]! : '';
      let logprobs: CompletionLogprobs | null = null;
      if (k !== null) {
        const gen = completionLogprobs(model, q.text.tokens.slice(0, n), q.lps, q.tops, k, pre.length);
        if (echo) {
          const pl = promptLp[q.prompt]!;
          const head = completionLogprobs(model, prompts[q.prompt]!, pl.lps, pl.tops, k, 0);
          logprobs = {
            tokens: [...head.tokens, ...gen.tokens],
            token_logprobs: [...head.token_logprobs, ...gen.token_logprobs],
            top_logprobs: [...head.top_logprobs, ...gen.top_logprobs],
            text_offset: [...head.text_offset, ...gen.text_offset],
          };
        } else logprobs = gen;
      }
      return { index: q.index, text: pre + q.text.fullText, logprobs, finish_reason: q.finish };
    });
    const text = JSON.stringify({ id, object, created, model: model.name, choices, usage: usage() });
    if (!res.destroyed) {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      res.end(text);
    }
    resolveDone();
  };

  /** Ends the request early: every unfinished choice ends with what it has. */
  const abort = (): void => {
    for (const h of handles) h.cancel();
    for (const q of seqs) if (!q.finish) finishSeq(q, 'length');
  };
  const fail = (message: string, status: number): void => {
    if (finished) return;
    finished = true;
    untrack();
    clearTimeout(timer);
    for (const h of handles) h.cancel();
    const e = new ApiError(status, message, status === 400 ? 'invalid_request_error' : 'server_error');
    if (stream) {
      write({ error: { message: e.message, type: e.type, param: null, code: null } });
      if (!res.writableEnded && !res.destroyed) res.end('data: [DONE]\n\n');
    } else deps.fail(res, e);
    resolveDone();
  };
  const untrack = deps.track(abort);
  const timer = setTimeout(abort, limits.requestTimeoutMs);
  // a client that goes away frees its sequences at once
  res.on('close', () => {
    if (finished) return;
    finished = true;
    untrack();
    clearTimeout(timer);
    for (const h of handles) h.cancel();
    resolveDone();
  });

  prompts.forEach((ids, p) => {
    const mine = seqs.filter((q) => q.prompt === p);
    const h = engine.submit(model.name, ids, params, {
      onStart: () => {
        if (stream && echo) {
          // the prompt goes first; its log-probs follow when the prefill has them
          if (!params.promptLogprobs) for (const q of mine) chunk([{ index: q.index, text: promptText[p], logprobs: null, finish_reason: null }]);
        }
        if (stream) for (const q of mine) openChat(q);
      },
      onPromptLogprobs: (lps, tops) => {
        promptLp[p] = { lps, tops };
        if (stream && echo) for (const q of mine) chunk([{ index: q.index, text: promptText[p], logprobs: completionLogprobs(model, ids, lps, tops, k ?? 0, 0), finish_reason: null }]);
      },
      onToken: (c, token, lp, top) => {
        const q = mine[c]!;
        if (q.finish || q.text.stopped) return;
        const delta = q.text.push(token);
        if (q.text.tokens.length > q.lps.length) {
          q.lps.push(lp);
          q.tops.push(top);
        }
        if (stream) {
          const isEos = skip.has(token);
          const lpChat = k !== null && !isEos ? { content: [chatLogprob(model, token, lp, top)], refusal: null } : null;
          if (kind === 'chat') {
            if (delta || lpChat) chunk([{ index: q.index, delta: { content: delta }, logprobs: lpChat, finish_reason: null }]);
          } else if (delta || (k !== null && !isEos)) {
            const lpc = k !== null && !isEos ? completionLogprobs(model, [token], [lp], [top], k, (echo ? promptText[p]!.length : 0) + q.text.fullText.length - tokenText(model, token).length) : null;
            chunk([{ index: q.index, text: delta, logprobs: lpc, finish_reason: null }]);
          }
        }
        if (q.text.stopped) {
          h.stopChoice(c);
          finishSeq(q, 'stop');
        }
      },
      onDone: (c, finish: Finish) => finishSeq(mine[c]!, finish === 'eos' ? 'stop' : 'length'),
      onError: (message, status) => fail(message, status),
    });
    handles.push(h);
  });
  await done;
}
