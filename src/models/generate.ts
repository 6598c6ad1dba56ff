// Batched sampling with a KV cache: left-padded prompts, temperature, top-k, top-p, EOS ids and stop strings,
// seeded; returns the new tokens, their log-probs (PPO needs them) and why each row stopped.
import { Random } from '../engine/random.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import { KVCache } from './kv-cache.js';
import type { Transformer } from './transformer.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** sampling temperature; 0 (or doSample false) means greedy */
  temperature?: number;
  doSample?: boolean;
  topK?: number;
  topP?: number;
  eosTokenId?: number | readonly number[] | null;
  /** fills the left padding of shorter prompts and the tail of finished rows (default: first EOS, else 0) */
  padTokenId?: number;
  /** stop a row once its decoded continuation contains one of these (needs `decode`) */
  stopStrings?: readonly string[];
  decode?: (ids: number[]) => string;
  seed?: number;
  rng?: Random;
  /** called for every new token of every unfinished row, as it is produced */
  onToken?: (row: number, token: number, logprob: number) => void;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerateResult {
  /** new tokens per row (including the EOS that ended it, as transformers returns it) */
  tokens: number[][];
  /** log-prob of each new token under the temperature-scaled model distribution (before top-k/top-p) */
  logprobs: number[][];
  finishReason: FinishReason[];
}

export function generate(model: Transformer, prompts: readonly (readonly number[])[], o: GenerateOptions): GenerateResult {
  const B = prompts.length;
  if (B === 0) return { tokens: [], logprobs: [], finishReason: [] };
  if (!(o.maxNewTokens >= 0)) throw new Error('generate: maxNewTokens must be >= 0');
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  const eos = new Set(o.eosTokenId === undefined || o.eosTokenId === null ? [] : typeof o.eosTokenId === 'number' ? [o.eosTokenId] : o.eosTokenId);
  const V = model.config.vocabSize;
  const firstEos = [...eos][0];
  const pad = o.padTokenId ?? (firstEos !== undefined && firstEos < V ? firstEos : 0);
  if (!Number.isInteger(pad) || pad < 0 || pad >= V) throw new Error(`generate: padTokenId ${pad} is outside the vocabulary (${V})`);
  const temperature = o.temperature ?? 1;
  const greedy = o.doSample === false || temperature === 0;
  const rng = o.rng ?? new Random(o.seed ?? 0);
  if (o.stopStrings?.length && !o.decode) throw new Error('generate: stopStrings need a decode function');

  // Left-pad the prompts; positions count real tokens only (as transformers' generate does).
  const Tp = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(B * Tp).fill(pad), mask = new Int32Array(B * Tp), positions = new Int32Array(B * Tp);
  const nextPos = new Int32Array(B);
  prompts.forEach((p, b) => {
    const off = Tp - p.length;
    for (let t = 0; t < p.length; t++) {
      const id = p[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`generate: prompt ${b} has token id ${id} outside the vocabulary (${V})`);
      ids[b * Tp + off + t] = id;
      mask[b * Tp + off + t] = 1;
      positions[b * Tp + off + t] = t;
    }
    nextPos[b] = p.length;
  });
  if (Tp + o.maxNewTokens > model.config.maxPositions && model.config.arch === 'gpt2')
    throw new Error(`generate: ${Tp} prompt + ${o.maxNewTokens} new tokens exceed the model's ${model.config.maxPositions} positions`);

  const tokens: number[][] = prompts.map(() => []), logprobs: number[][] = prompts.map(() => []);
  const finish: (FinishReason | null)[] = prompts.map(() => null);
  const cache = new KVCache(model.config, B, Tp + o.maxNewTokens);
  try {
    let logits = noGrad(() => tidy(() => lastLogits(model, ids, B, Tp, { attentionMask: mask, positions, cache })));
    for (let step = 0; step < o.maxNewTokens; step++) {
      const next = new Int32Array(B).fill(pad);
      for (let b = 0; b < B; b++) {
        if (finish[b]) continue;
        const row = logits.subarray(b * V, (b + 1) * V);
        const [tok, lp] = greedy ? argmax(row) : sampleToken(row, temperature, o.topK, o.topP, rng);
        next[b] = tok;
        tokens[b]!.push(tok);
        logprobs[b]!.push(lp);
        o.onToken?.(b, tok, lp);
        if (eos.has(tok)) finish[b] = 'eos';
        else if (o.stopStrings?.length) {
          const text = o.decode!(tokens[b]!);
          if (o.stopStrings.some((s) => text.includes(s))) finish[b] = 'stop';
        }
      }
      if (finish.every((f) => f) || step === o.maxNewTokens - 1) break;
      const pos = Int32Array.from(nextPos);
      for (let b = 0; b < B; b++) nextPos[b]!++;
      logits = noGrad(() => tidy(() => lastLogits(model, next, B, 1, { attentionMask: new Int32Array(B).fill(1), positions: pos, cache })));
    }
  } finally {
    cache.dispose();
  }
  return { tokens, logprobs, finishReason: finish.map((f) => f ?? 'length') };
}

/** Logits of the last position of every row, [B·V], computing the LM head for that position only. */
function lastLogits(model: Transformer, ids: Int32Array, B: number, T: number, o: { attentionMask: Int32Array; positions: Int32Array; cache: KVCache }): Float32Array {
  const h = model.hidden(ids, B, T, o);
  const last: Tensor = T === 1 ? h : h.slice(1, T - 1, T);
  return model.logits(last).toArray();
}

function argmax(row: Float32Array): [number, number] {
  let best = 0, m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) { m = row[i]!; best = i; }
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  return [best, -Math.log(s)];
}

/**
 * Samples from softmax(row / temperature) restricted to the top-k tokens and to the smallest set of most
 * probable tokens whose mass reaches top-p. Returns the token and its log-prob under the unrestricted
 * temperature-scaled distribution.
 */
export function sampleToken(row: Float32Array, temperature: number, topK: number | undefined, topP: number | undefined, rng: Random): [number, number] {
  const V = row.length, inv = 1 / temperature;
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (row[i]! > m) m = row[i]!;
  const p = new Float64Array(V);
  let z = 0;
  for (let i = 0; i < V; i++) z += p[i] = Math.exp((row[i]! - m) * inv);
  // candidate threshold: keep probabilities >= tau
  let tau = 0;
  if (topK !== undefined && topK > 0 && topK < V) tau = kthLargest(p, topK);
  if (topP !== undefined && topP < 1) {
    // top-p acts on what top-k kept (transformers applies the warpers in that order): the largest threshold
    // whose kept mass is still >= topP of that (binary search on the threshold, O(V) per probe)
    let zk = 0;
    for (let i = 0; i < V; i++) if (p[i]! >= tau) zk += p[i]!;
    let lo = tau, hi = 1; // p values lie in (0, 1] after the max shift
    for (let it = 0; it < 40; it++) {
      const mid = (lo + hi) / 2;
      let mass = 0;
      for (let i = 0; i < V; i++) if (p[i]! >= mid) mass += p[i]!;
      if (mass >= topP * zk) lo = mid;
      else hi = mid;
    }
    tau = Math.max(tau, lo);
  }
  let kept = 0;
  for (let i = 0; i < V; i++) if (p[i]! >= tau) kept += p[i]!;
  let u = rng.uniform() * kept, tok = -1;
  for (let i = 0; i < V; i++) {
    if (p[i]! < tau) continue;
    tok = i;
    u -= p[i]!;
    if (u < 0) break;
  }
  return [tok, Math.log(p[tok]! / z)];
}

/** The k-th largest value (quickselect on a copy). */
function kthLargest(a: Float64Array, k: number): number {
  const x = Float64Array.from(a);
  let lo = 0, hi = x.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = x[(lo + hi) >> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (x[i]! > pivot) i++;
      while (x[j]! < pivot) j--;
      if (i <= j) { const t = x[i]!; x[i] = x[j]!; x[j] = t; i++; j--; }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return x[target]!;
}
