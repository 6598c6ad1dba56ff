// The serving engine without HTTP: linear rows that do not depend on the batch (bit for bit, on both GEMM
// kernels), the ragged step against the model's own forward and generate(), sequences giving the same bits alone
// and among others (GPT-2, Llama, a LoRA adapter), and the sampler's top-k/top-p against generate's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Random } from '../../src/engine/random.js';
import { Tensor, noGrad } from '../../src/engine/tensor.js';
import { loadAdapter } from '../../src/io/peft.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { generate, sampleFromProbs } from '../../src/models/generate.js';
import { SeqCache, ServeModel } from '../../src/serve/forward.js';
import { rowMatmul } from '../../src/serve/rows.js';
import { nucleusEdge, sampleRow, topEntries } from '../../src/models/sample.js';
import { FIX, makeModels } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'alignkit-serve-engine-'));
after(() => rmSync(root, { recursive: true, force: true }));
const models = makeModels(root);

test('rowMatmul: every row is the same bits whatever the number of rows (few-row and blocked kernels)', () => {
  const rng = new Random(1);
  for (const [K, N] of [
    [64, 192],
    [600, 40],
    [800, 301],
    [3072, 50],
  ] as const) {
    const w = Tensor.from(
      Float32Array.from({ length: K * N }, () => rng.normal()),
      [K, N],
    );
    const x = Tensor.from(
      Float32Array.from({ length: 40 * K }, () => rng.normal()),
      [40, K],
    );
    const alone = rowMatmul(x.slice(0, 0, 1), w).toArray();
    for (const M of [2, 5, 8, 9, 17, 40]) {
      const y = rowMatmul(x.slice(0, 0, M), w).toArray();
      assert.deepEqual(y.subarray(0, N), alone, `K ${K} N ${N}: row 0 of ${M} rows`);
    }
    // and against a float64 product
    const y = rowMatmul(x, w).toArray();
    let worst = 0;
    for (const r of [0, 39])
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x.data[r * K + k]! * w.data[k * N + j]!;
        worst = Math.max(worst, Math.abs(y[r * N + j]! - s));
      }
    assert.ok(worst < 1e-3, `K ${K} N ${N}: |error| ${worst}`);
  }
});

/** Greedy tokens of `prompt` decoded alone, or among `others` extra sequences that join and leave. */
function greedy(sm: ServeModel, prompt: number[], steps: number, others: number, adapter = -1): { tokens: number[]; logits: Float32Array[] } {
  const V = sm.config.vocabSize;
  const me = new SeqCache(sm.config, prompt.length + steps);
  const rest = Array.from({ length: others }, (_, i) => ({ cache: new SeqCache(sm.config, 40), last: (i * 37) % V, adapter: i % 2 === 0 ? -1 : adapter }));
  const tokens: number[] = [],
    logits: Float32Array[] = [];
  let ids = prompt;
  for (let s = 0; s < steps; s++) {
    // others join over the first steps (their prompts prefilled alongside) and keep decoding
    const segs = rest.filter((_, i) => i < (s + 1) * 6).map((o) => ({ cache: o.cache, ids: o.cache.length ? [o.last] : [1, 2, 3, (o.last % 50) + 4], adapter: o.adapter, logits: 'last' as const }));
    const mine = Math.floor(segs.length / 2);
    segs.splice(mine, 0, { cache: me, ids, adapter, logits: 'last' });
    const r = sm.step(segs);
    const row = r.logits.toArray().slice(r.first[mine]! * V, (r.first[mine]! + 1) * V);
    r.logits.dispose();
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j]! > row[best]!) best = j;
    tokens.push(best);
    logits.push(row);
    ids = [best];
    segs.forEach((sg, i) => {
      if (i !== mine) rest.find((o) => o.cache === sg.cache)!.last = (sg.cache.length * 13) % V;
    });
  }
  me.dispose();
  for (const o of rest) o.cache.dispose();
  return { tokens, logits };
}

for (const name of ['tiny-gpt2', 'tiny-llama']) {
  test(`${name}: the serving step matches the model's forward and generate(), and a sequence's bits do not depend on the batch`, () => {
    const p = loadPretrained(join(FIX, name));
    const prompt = [5, 17, 99, 3, 42, 7, 8];
    const ref = noGrad(() => p.model.forward(Int32Array.from(prompt), 1, prompt.length).toArray());
    const gen = generate(p.model, [prompt], { maxNewTokens: 6, doSample: false });
    const sm = new ServeModel(p.model);
    try {
      const c = new SeqCache(sm.config, 16);
      const r = sm.step([{ cache: c, ids: prompt, adapter: -1, logits: 'all' }]);
      const got = r.logits.toArray();
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - ref[i]!));
      assert.ok(worst < 1e-4, `logits differ from forward() by ${worst}`);
      r.logits.dispose();
      c.dispose();
      const alone = greedy(sm, prompt, 6, 0);
      assert.deepEqual(alone.tokens, gen.tokens[0], 'greedy tokens equal generate()');
      for (const others of [3, 20]) {
        const batched = greedy(sm, prompt, 6, others);
        assert.deepEqual(batched.tokens, alone.tokens);
        batched.logits.forEach((row, s) => assert.deepEqual(row, alone.logits[s], `step ${s} among ${others} others: the same bits`));
      }
    } finally {
      sm.dispose();
    }
  });
}

test('a LoRA adapter: its rows get the update (as the merged model computes), base rows in the same step do not', () => {
  const p = loadPretrained(models.gpt2);
  const merged = loadPretrained(models.gpt2);
  loadAdapter(models.adapter, merged.model);
  merged.model.training = false;
  const prompt = [11, 12, 13, 14];
  const refAdapted = noGrad(() => merged.model.forward(Int32Array.from(prompt), 1, prompt.length).toArray());
  const refBase = noGrad(() => p.model.forward(Int32Array.from(prompt), 1, prompt.length).toArray());
  const sm = new ServeModel(p.model);
  loadAdapter(models.adapter, p.model);
  const a = sm.addAdapters(p.model);
  try {
    const ca = new SeqCache(sm.config, 8),
      cb = new SeqCache(sm.config, 8);
    const r = sm.step([
      { cache: cb, ids: prompt, adapter: -1, logits: 'all' },
      { cache: ca, ids: prompt, adapter: a, logits: 'all' },
    ]);
    const got = r.logits.toArray(),
      V = sm.config.vocabSize,
      n = prompt.length * V;
    const diff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
    assert.ok(diff(got.subarray(0, n), refBase) < 1e-4, 'base rows');
    assert.ok(diff(got.subarray(n, 2 * n), refAdapted) < 1e-4, 'adapter rows');
    assert.ok(diff(refAdapted, refBase) > 1e-2, 'the adapter changes the logits');
    r.logits.dispose();
    ca.dispose();
    cb.dispose();
    // adapter rows are batch-independent too
    const alone = greedy(sm, prompt, 5, 0, a),
      batched = greedy(sm, prompt, 5, 13, a);
    assert.deepEqual(batched.logits, alone.logits);
  } finally {
    sm.dispose();
    merged.model.dispose();
  }
});

test('sampling: top-k / top-p keep what generate keeps, draws follow the generator, topEntries', () => {
  const rng = new Random(3);
  const V = 500;
  const logits = Float32Array.from({ length: V }, () => rng.normal() * 2);
  const m = Math.max(...logits);
  const p = logits.map((x) => Math.exp(x - m));
  const z = p.reduce((s, x) => s + x, 0);
  for (let i = 0; i < V; i++) p[i] = p[i]! / z;
  for (const [k, tp] of [
    [null, 0.9],
    [50, null],
    [50, 0.5],
    [null, 0.05],
    [1, null],
  ] as const) {
    const a = new Random(7),
      b = new Random(7);
    for (let t = 0; t < 200; t++) assert.equal(sampleRow(p, k, tp, a), sampleFromProbs(p, k ?? undefined, tp ?? undefined, b)[0], `top_k ${k} top_p ${tp}, draw ${t}`);
  }
  // the nucleus edge: the smallest set of largest values holding the mass
  const sorted = [...p].sort((x, y) => y - x);
  let acc = 0,
    edge = 0;
  for (const v of sorted) {
    acc += v;
    edge = v;
    if (acc >= 0.7) break;
  }
  assert.equal(nucleusEdge(Float32Array.from(p), 0.7), edge);
  const top = topEntries(Float32Array.from([0.1, 0.5, 0.3, 0.5, 0.05]), 3);
  assert.deepEqual(
    top.map(([i]) => i),
    [1, 3, 2],
  );
});
