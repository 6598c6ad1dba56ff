// Continuous batching on the engine thread. Each base model has a batch of sequences being decoded and a queue of
// requests waiting. Every step, waiting requests join while there is room (their whole prompt is prefilled in
// the same forward pass as the other sequences' next tokens), every sequence in the batch gets one new token,
// and finished or cancelled sequences leave, freeing their KV cache at once. A request's choices sample with
// their own generators (choice i seeded from (seed, i)), and the forward pass gives every row the same numbers
// whatever else is in the batch (forward.ts), so a request's output does not depend on the other requests.
import { mul } from '../engine/ops/elementwise.js';
import { logSoftmax, softmax } from '../engine/ops/norm.js';
import { Random } from '../engine/random.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import { type Segment, SeqCache, type ServeModel } from './forward.js';
import type { Finish, FromEngine, Job, TokenEvent } from './protocol.js';
import { argmax, sampleRow, topEntries } from '../models/sample.js';

/** The seed of choice i of a request seeded `seed` (choice 0 uses the seed itself). */
function choiceSeed(seed: number, i: number): number {
  return i === 0 ? seed >>> 0 : (Math.imul((seed >>> 0) ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(i, 0x85ebca6b)) >>> 0;
}

interface Choice {
  req: Request;
  index: number;
  cache: SeqCache;
  rng: Random;
  /** the last token, fed back at the next step */
  last: number;
  produced: number;
  done: boolean;
}

interface Request {
  job: Job;
  adapter: number;
  choices: Choice[];
}

export interface BaseBatch {
  model: ServeModel;
  waiting: Request[];
  active: Choice[];
}

interface BatcherOptions {
  maxBatch: number;
  prefillBudget: number;
}

type StepMessage = Extract<FromEngine, { type: 'step' }>;

export class Batcher {
  private readonly byId = new Map<number, { base: BaseBatch; req: Request }>();

  constructor(
    /** each served name → its base batch and adapter index (-1: the base itself) */
    private readonly models: ReadonlyMap<string, { base: BaseBatch; adapter: number }>,
    private readonly o: BatcherOptions,
  ) {}

  private bases(): BaseBatch[] {
    return [...new Set([...this.models.values()].map((m) => m.base))];
  }

  /** Queues a job; returns an error message instead when it cannot run. */
  submit(job: Job): string | null {
    const m = this.models.get(job.model);
    if (!m) return `no model named ${JSON.stringify(job.model)}`;
    const c = m.base.model.config,
      p = job.params;
    if (job.prompt.length === 0) return 'the prompt has no tokens';
    for (const id of job.prompt) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) return `token id ${id} is outside the vocabulary (0 … ${c.vocabSize - 1})`;
    if (job.prompt.length + p.maxTokens > c.maxPositions)
      return `the prompt (${job.prompt.length} tokens) plus max_tokens (${p.maxTokens}) is more than the model's context of ${c.maxPositions} tokens`;
    if (p.n > this.o.maxBatch) return `n = ${p.n} is more than the ${this.o.maxBatch} sequences the server decodes at once`;
    if (this.byId.has(job.id)) return `request id ${job.id} is already running`;
    const req: Request = { job, adapter: m.adapter, choices: [] };
    m.base.waiting.push(req);
    this.byId.set(job.id, { base: m.base, req });
    return null;
  }

  /** Ends a request now (its sequences leave the batch and free their caches); unknown ids are ignored. */
  cancel(id: number): void {
    const e = this.byId.get(id);
    if (!e) return;
    const w = e.base.waiting.indexOf(e.req);
    if (w >= 0) e.base.waiting.splice(w, 1);
    for (const ch of e.req.choices) this.finish(e.base, ch);
    this.byId.delete(id);
  }

  /** Ends one choice of a request (its text reached a stop string). */
  stop(id: number, choice: number): boolean {
    const e = this.byId.get(id);
    const ch = e?.req.choices[choice];
    if (!e || !ch || ch.done) return false;
    this.finish(e.base, ch);
    this.settle(e.req);
    return true;
  }

  hasWork(): boolean {
    return this.bases().some((b) => b.active.length > 0 || b.waiting.length > 0);
  }

  get activeCount(): number {
    return this.bases().reduce((s, b) => s + b.active.length, 0);
  }
  get waitingCount(): number {
    return this.bases().reduce((s, b) => s + b.waiting.length, 0);
  }

  private finish(base: BaseBatch, ch: Choice): void {
    if (ch.done) return;
    ch.done = true;
    ch.cache.dispose();
    const i = base.active.indexOf(ch);
    if (i >= 0) base.active.splice(i, 1);
  }

  private settle(req: Request): void {
    if (req.choices.length && req.choices.every((c) => c.done)) this.byId.delete(req.job.id);
  }

  /** Fails every started request of a base (after an engine error), returning their ids. */
  private failBase(base: BaseBatch): number[] {
    const ids = [...this.byId].filter(([, e]) => e.base === base && e.req.choices.length > 0).map(([id]) => id);
    for (const id of ids) this.cancel(id);
    return ids;
  }

  /** One step of every base model with work; the step's events, and requests that failed with their error. */
  step(): { message: StepMessage; failed: { id: number; error: string }[] } {
    const msg: StepMessage = { type: 'step', started: [], promptLogprobs: [], tokens: [], done: [], active: 0, waiting: 0 };
    const failed: { id: number; error: string }[] = [];
    for (const base of this.bases()) {
      if (!base.active.length && !base.waiting.length) continue;
      try {
        this.stepBase(base, msg);
      } catch (e) {
        const error = (e as Error).message;
        for (const id of this.failBase(base)) failed.push({ id, error });
      }
    }
    msg.active = this.activeCount;
    msg.waiting = this.waitingCount;
    return { message: msg, failed };
  }

  private stepBase(base: BaseBatch, msg: StepMessage): void {
    const model = base.model,
      V = model.config.vocabSize;
    // join: whole requests (all their choices) while the batch has room and the prefill budget lasts
    const joined: Request[] = [];
    let budget = this.o.prefillBudget,
      seqs = base.active.length;
    while (base.waiting.length) {
      const r = base.waiting[0]!;
      if (seqs + r.job.params.n > this.o.maxBatch) break;
      if (joined.length && r.job.prompt.length > budget) break;
      base.waiting.shift();
      budget -= r.job.prompt.length;
      seqs += r.job.params.n;
      const cap = r.job.prompt.length + Math.max(1, r.job.params.maxTokens);
      for (let i = 0; i < r.job.params.n; i++)
        r.choices.push({ req: r, index: i, cache: new SeqCache(model.config, cap), rng: new Random(choiceSeed(r.job.params.seed, i)), last: -1, produced: 0, done: false });
      joined.push(r);
      msg.started.push(r.job.id);
    }
    const decoding = [...base.active];
    const segments: Segment[] = decoding.map((ch) => ({ cache: ch.cache, ids: [ch.last], adapter: ch.req.adapter, logits: 'last' }));
    for (const r of joined) segments.push({ cache: r.choices[0]!.cache, ids: r.job.prompt, adapter: r.adapter, logits: r.job.params.promptLogprobs ? 'all' : 'last' });
    if (!segments.length) return;

    noGrad(() =>
      tidy(() => {
        const res = model.step(segments);
        // rows to sample from: each decoding sequence's own, and each joined request's last prompt row (all its choices)
        const rowChoices: { row: number; choices: Choice[] }[] = decoding.map((ch, i) => ({ row: res.first[i]!, choices: [ch] }));
        joined.forEach((r, j) => {
          const s = decoding.length + j;
          rowChoices.push({ row: res.first[s]! + res.count[s]! - 1, choices: r.job.params.maxTokens > 0 ? r.choices : [] });
        });
        const R = res.logits.shape[0]!;
        const wantLogprobs = decoding.some((c) => c.req.job.params.logprobs !== null) || joined.some((r) => r.job.params.logprobs !== null || r.job.params.promptLogprobs);
        const lsm = wantLogprobs ? logSoftmax(res.logits).data : null;
        const temps = new Float32Array(R).fill(1);
        let sampling = false;
        for (const { row, choices } of rowChoices) {
          const t = choices[0]?.req.job.params.temperature ?? 0;
          if (t > 0) {
            temps[row] = 1 / t;
            sampling = true;
          }
        }
        const probs = sampling ? softmax(mul(res.logits, Tensor.from(temps, [R, 1]))).data : null;
        const logits = res.logits.data;

        // prompt log-probs of joined requests that asked (echo): token t given tokens < t
        joined.forEach((r, j) => {
          if (!r.job.params.promptLogprobs) return;
          const s = decoding.length + j,
            first = res.first[s]!,
            k = r.job.params.logprobs ?? 0;
          const lp: (number | null)[] = [null],
            top: ([number, number][] | null)[] = [null];
          for (let t = 1; t < r.job.prompt.length; t++) {
            const row = lsm!.subarray((first + t - 1) * V, (first + t) * V);
            lp.push(row[r.job.prompt[t]!]!);
            top.push(k > 0 ? topEntries(row, k) : null);
          }
          msg.promptLogprobs.push({ id: r.job.id, logprobs: lp, top });
        });
        // the joined requests' other choices start from the same prefilled cache
        for (const r of joined) for (const ch of r.choices.slice(1)) ch.cache.copyFrom(r.choices[0]!.cache);

        for (const { row, choices } of rowChoices) {
          for (const ch of choices) {
            const p = ch.req.job.params;
            const tok = p.temperature > 0 ? sampleRow(probs!.subarray(row * V, (row + 1) * V), p.topK, p.topP, ch.rng) : argmax(logits.subarray(row * V, (row + 1) * V));
            const lrow = lsm ? lsm.subarray(row * V, (row + 1) * V) : null;
            const ev: TokenEvent = [ch.req.job.id, ch.index, tok, lrow && p.logprobs !== null ? lrow[tok]! : 0, lrow && p.logprobs ? topEntries(lrow, p.logprobs) : null];
            msg.tokens.push(ev);
            ch.last = tok;
            ch.produced++;
            let finish: Finish | null = null;
            if (p.stopIds.includes(tok)) finish = 'eos';
            else if (ch.produced >= p.maxTokens) finish = 'length';
            if (finish) {
              msg.done.push([ch.req.job.id, ch.index, finish]);
              this.finish(base, ch);
            }
          }
        }
        // joined requests that asked for no new tokens (echo only) are done after their prefill
        for (const r of joined) {
          if (r.job.params.maxTokens === 0)
            for (const ch of r.choices) {
              msg.done.push([r.job.id, ch.index, 'length']);
              ch.done = true;
              ch.cache.dispose();
            }
          for (const ch of r.choices) if (!ch.done) base.active.push(ch);
          this.settle(r);
        }
        for (const ch of decoding) this.settle(ch.req);
      }),
    );
  }

  /** Frees every cache. */
  dispose(): void {
    for (const id of [...this.byId.keys()]) this.cancel(id);
  }
}
