// Batched sampling with a KV cache: left-padded prompts, temperature, top-k, top-p, EOS ids and stop strings,
// seeded; returns the new tokens, their log-probs (PPO needs them) and why each row stopped.
import { bf16Supported, matmulPrecision } from '../engine/autocast.js';
import { Random } from '../engine/random.js';
import { scale } from '../engine/ops/elementwise.js';
import { logSoftmax, softmax } from '../engine/ops/norm.js';
import { withPackedWeights } from '../engine/ops/packed-weights.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import { KVCache, type KVCacheDtype } from './kv-cache.js';
import { sampleRow } from './sample.js';
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
  /** one generator for the batch, or one per row (then a row's samples do not depend on the other rows) */
  rng?: Random | readonly Random[];
  /** called for every new token of every unfinished row, as it is produced */
  onToken?: (row: number, token: number, logprob: number) => void;
  /**
   * Samples per prompt (transformers' num_return_sequences, GRPO's group size; default 1). Each prompt is
   * prefilled once and its KV cache copied into its samples; result rows are prompt-major (prompt 0's samples,
   * then prompt 1's, ...), the same rows as generating from every prompt repeated this many times.
   */
  numReturnSequences?: number;
  /**
   * Pack the model's weights for the GEMM once and reuse them in every decoding step (default: when more than
   * 8 rows decode at once, or under bf16; fewer fp32 rows stream the weights unpacked). Costs one extra copy of
   * the weights (half of one under bf16) while generating. The results are identical either way, except for
   * batches of up to 8 rows under bf16, whose products then run in bf16 (unpacked they stay fp32).
   */
  packWeights?: boolean;
  /**
   * How the KV cache stores keys and values (default 'bf16' when products run in bf16 — under
   * autocast('bf16') on a CPU with AVX512_BF16 — else 'fp32'). bf16 halves the bytes that every decoding step
   * reads back, as a PyTorch bf16 model's cache does; keys and values are rounded to bf16 as they are stored.
   */
  kvCacheDtype?: KVCacheDtype;
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
  const rows = prompts.length * (o.numReturnSequences ?? 1);
  return (o.packWeights ?? (rows > 8 || matmulPrecision() === 'bf16')) ? withPackedWeights(model.parameters(), () => generateRows(model, prompts, o)) : generateRows(model, prompts, o);
}

function generateRows(model: Transformer, prompts: readonly (readonly number[])[], o: GenerateOptions): GenerateResult {
  const P = prompts.length;
  const n = o.numReturnSequences ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new Error(`generate: numReturnSequences must be a positive integer, got ${n}`);
  const B = P * n;
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
  const rngs = Array.isArray(o.rng) ? (o.rng as readonly Random[]) : null;
  if (rngs && rngs.length !== B) throw new Error(`generate: ${rngs.length} random generators for ${B} rows`);
  const rng = rngs ? null : ((o.rng as Random | undefined) ?? new Random(o.seed ?? 0));
  if (o.stopStrings?.length && !o.decode) throw new Error('generate: stopStrings need a decode function');

  // Left-pad the prompts; positions count real tokens only (as transformers' generate does).
  const Tp = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(P * Tp).fill(pad),
    mask = new Int32Array(P * Tp),
    positions = new Int32Array(P * Tp);
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
    for (let s = 0; s < n; s++) nextPos[b * n + s] = p.length;
  });
  if (Tp + o.maxNewTokens > model.config.maxPositions && model.config.arch === 'gpt2')
    throw new Error(`generate: ${Tp} prompt + ${o.maxNewTokens} new tokens exceed the model's ${model.config.maxPositions} positions`);

  const tokens: number[][] = Array.from({ length: B }, () => []),
    logprobs: number[][] = Array.from({ length: B }, () => []);
  const finish: (FinishReason | null)[] = new Array<FinishReason | null>(B).fill(null);
  const capacity = Tp + o.maxNewTokens;
  const kvDtype = o.kvCacheDtype ?? (matmulPrecision() === 'bf16' && bf16Supported() ? 'bf16' : 'fp32');
  let cache = new KVCache(model.config, P, capacity, kvDtype);
  try {
    // per row: log-probabilities (greedy) or probabilities (sampling) at the sampling temperature, computed natively
    const dist = (rows: number, ids: Int32Array, T: number, attentionMask: Int32Array, positions: Int32Array): Float32Array =>
      noGrad(() => tidy(() => lastDistribution(model, ids, rows, T, { attentionMask, positions, cache }, greedy ? 1 : temperature, greedy)));
    let logits = dist(P, ids, Tp, mask, positions);
    if (n > 1) {
      // each prompt's cache (keys, values, key mask) and last distribution, copied into its n samples
      const shared = cache.repeatRows(n);
      cache.dispose();
      cache = shared;
      const rep = new Float32Array(B * V);
      for (let b = 0; b < P; b++) for (let s = 0; s < n; s++) rep.set(logits.subarray(b * V, (b + 1) * V), (b * n + s) * V);
      logits = rep;
    }
    for (let step = 0; step < o.maxNewTokens; step++) {
      const next = new Int32Array(B).fill(pad);
      for (let b = 0; b < B; b++) {
        if (finish[b]) continue;
        const row = logits.subarray(b * V, (b + 1) * V);
        const [tok, lp] = greedy ? argmax(row) : sampleFromProbs(row, o.topK, o.topP, rngs ? rngs[b]! : rng!);
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
      logits = dist(B, next, 1, new Int32Array(B).fill(1), pos);
    }
  } finally {
    cache.dispose();
  }
  return { tokens, logprobs, finishReason: finish.map((f) => f ?? 'length') };
}

/**
 * The next-token distribution at the last position of every row, [B·V]: log-softmax (log = true) or softmax of
 * logits / temperature, computing the LM head for that position only.
 */
function lastDistribution(
  model: Transformer,
  ids: Int32Array,
  B: number,
  T: number,
  o: { attentionMask: Int32Array; positions: Int32Array; cache: KVCache },
  temperature: number,
  log: boolean,
): Float32Array {
  const h = model.hidden(ids, B, T, o);
  const last: Tensor = T === 1 ? h : h.slice(1, T - 1, T);
  let logits = model.logits(last);
  if (temperature !== 1) logits = scale(logits, 1 / temperature);
  return (log ? logSoftmax(logits) : softmax(logits)).toArray();
}

/** The most likely token and its log-prob, from a row of log-probabilities. */
function argmax(logp: Float32Array): [number, number] {
  let best = 0;
  for (let i = 1; i < logp.length; i++) if (logp[i]! > logp[best]!) best = i;
  return [best, logp[best]!];
}

/**
 * Samples from softmax(row / temperature) restricted to the top-k tokens and to the smallest set of most
 * probable tokens whose mass reaches top-p. Returns the token and its log-prob under the unrestricted
 * temperature-scaled distribution.
 */
export function sampleToken(row: Float32Array, temperature: number, topK: number | undefined, topP: number | undefined, rng: Random): [number, number] {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
  const p = new Float32Array(row.length);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += p[i] = Math.exp((row[i]! - m) / temperature);
  for (let i = 0; i < row.length; i++) p[i]! /= z;
  return sampleFromProbs(p, topK, topP, rng);
}

/**
 * Samples from a probability row restricted to the top-k tokens and then to the smallest set of most probable
 * tokens whose mass reaches top-p of what top-k kept (transformers applies the warpers in that order).
 * Returns the token and the log of its unrestricted probability.
 */
export function sampleFromProbs(p: Float32Array, topK: number | undefined, topP: number | undefined, rng: Random): [number, number] {
  const tok = sampleRow(p, topK ?? null, topP ?? null, rng);
  return [tok, Math.log(p[tok]!)];
}
