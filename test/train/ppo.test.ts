// PPO on tiny random GPT-2 models: rollouts (layout, recomputed log-probs, stop token, missing_eos_penalty),
// reward-model scoring, learning (a scorer's mean reward rises over fresh rollouts while the logged KL to the
// reference stays bounded), LoRA with the adapters-off reference, exact resume from a checkpoint, and runPPO
// end to end from a model directory, a tokenizer and a JSONL prompt file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../../src/engine/random.js';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { packageRoot } from '../../src/engine/native.js';
import { parseConfig } from '../../src/io/config.js';
import { type Pretrained, loadPretrained, savePretrained } from '../../src/io/pretrained.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { generate } from '../../src/models/generate.js';
import { lastTokenIndex, sequenceScore } from '../../src/models/heads.js';
import { Transformer } from '../../src/models/transformer.js';
import { PPOConfig, PPOTrainer } from '../../src/train/ppo.js';
import { runTraining } from '../../src/train/run.js';
import { layoutRollout, rolloutForward } from '../../src/train/rl/rollout.js';
import { rewardModelScorer, rewardModelScores, type ScoreFunction } from '../../src/train/rl/scorer.js';
import type { PromptItem } from '../../src/train/rl/online-trainer.js';

const V = 50,
  EOS = 0;
const TARGET = new Set([3, 7, 11, 19, 23]);
/** fraction of response tokens in TARGET (about 0.1 for the untrained model) */
const targetFraction: ScoreFunction = (_p, _r, info) => info.responseIds.map((r) => r.filter((t) => TARGET.has(t)).length / r.length);

function gpt2Json(vocab: number, arch = 'GPT2LMHeadModel'): Record<string, unknown> {
  return { architectures: [arch], model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 2, n_positions: 64, vocab_size: vocab, bos_token_id: EOS, eos_token_id: EOS, num_labels: 1 };
}

/** A tiny random GPT-2 as a loaded Hugging Face model (so checkpoints save it in the HF layout). */
function tinyPolicy(seed: number, vocab = V): Pretrained {
  const hfConfig = parseConfig(gpt2Json(vocab));
  return { model: Transformer.random(hfConfig.model, seed), hfConfig, generation: null, score: null };
}

function tinyRewardModel(seed: number): Pretrained {
  const hfConfig = parseConfig(gpt2Json(V, 'GPT2ForSequenceClassification'));
  const model = Transformer.random(hfConfig.model, seed);
  const rng = new Random(seed + 1);
  const score = Tensor.param(
    Tensor.from(
      Float32Array.from({ length: 32 }, () => rng.normal()),
      [1, 32],
    ),
    'score.weight',
  );
  return { model, hfConfig, generation: null, score };
}

const prompts: PromptItem[] = Array.from({ length: 32 }, (_, i) => ({ ids: [1 + (i % 40), 2 + ((i * 7) % 40)].slice(0, 1 + (i % 2)), text: `prompt ${i}` }));

/** Mean score of fresh samples (4 per prompt, temperature 1, its own seed). */
function freshScore(model: Transformer, scorer: ScoreFunction, seed: number, maxNewTokens = 6): number {
  const ps = prompts.flatMap((p) => [p.ids, p.ids, p.ids, p.ids]);
  const g = generate(model, ps, { maxNewTokens, temperature: 1, seed });
  const s = scorer([], [], { promptIds: ps.map((p) => [...p]), responseIds: g.tokens, finishReason: g.finishReason }) as number[];
  return s.reduce((a, b) => a + b, 0) / s.length;
}

/** Raises EOS's logit by about `by` (final-norm bias along one axis, EOS's tied embedding along it) so that some responses stop early. */
function favourEos(model: Transformer, by: number): void {
  model.p('transformer.ln_f.bias').data[0] = 1;
  model.embedWeight.data[EOS * 32] = by;
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'alignkit-ppo-'));
const base = { seed: 1, save_steps: 0, disable_tqdm: true, lr_scheduler_type: 'constant', logging_steps: 1 } as const;

test("rollouts: left-padded prompts, responses cut after the stop token, recomputed log-probs equal the sampler's", () => {
  const p = tinyPolicy(3);
  const dir = tmp();
  try {
    const tr = new PPOTrainer({
      args: { ...base, output_dir: dir, per_device_train_batch_size: 8, response_length: 12, temperature: 0.7, stop_token: 'eos', missing_eos_penalty: 1.5 },
      model: p,
      rewardFuncs: () => new Array(8).fill(1),
      trainDataset: prompts,
      eosTokenId: EOS,
    });
    favourEos(p.model, 1.2);
    const rng = new Random(9);
    const sample = prompts.slice(0, 8);
    const batch = tr.rollout(sample);
    assert.equal(batch.Tp, 2);
    let stopped = 0;
    batch.responseIds.forEach((r, b) => {
      const at = r.indexOf(EOS);
      if (at >= 0) {
        stopped++;
        assert.equal(at, r.length - 1, 'nothing follows the stop token');
        assert.equal(batch.finishReason[b], 'eos');
      } else assert.equal(r.length, 12);
      assert.equal(batch.lengths[b], r.length);
      for (let j = 0; j < batch.R; j++) assert.equal(batch.responseMask[b * batch.R + j], j < r.length ? 1 : 0);
      // prompt is right-aligned in the first Tp columns, response starts at column Tp
      const T = batch.Tp + batch.R,
        pr = sample[b]!.ids;
      assert.deepEqual(Array.from(batch.ids.subarray(b * T + batch.Tp - pr.length, b * T + batch.Tp)), [...pr]);
      assert.equal(batch.positions[b * T + batch.Tp], pr.length);
    });
    assert.ok(stopped >= 2 && stopped < 8, `some but not all responses stop early (${stopped})`);
    // the no-grad forward over the laid-out batch reproduces the sampler's temperature-scaled log-probs
    const g = generate(
      p.model,
      sample.map((s) => s.ids),
      { maxNewTokens: 12, temperature: 0.7, eosTokenId: EOS, rng },
    );
    const b2 = layoutRollout(
      sample.map((s) => s.ids),
      g.tokens,
      g.finishReason,
      EOS,
    );
    const lp = rolloutForward(p.model, b2, { temperature: 0.7, chunk: 3 }).logprobs;
    let maxErr = 0;
    g.logprobs.forEach((row, b) => row.forEach((v, j) => (maxErr = Math.max(maxErr, Math.abs(v - lp[b * b2.R + j]!)))));
    console.log(`rollout: ${stopped}/8 responses stopped at EOS; recomputed vs sampled log-probs max |diff| ${maxErr.toExponential(2)}`);
    assert.ok(maxErr < 2e-5, `recomputed log-probs differ from the sampler's by ${maxErr}`);
    for (let i = 0; i < lp.length; i++) if (!b2.responseMask[i]) assert.equal(lp[i], 0);
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("rollouts on a Llama checkpoint: rotary positions of left-padded prompts match the sampler's", () => {
  const p = loadPretrained(join(packageRoot(), 'test', 'fixtures', 'hf-fixtures', 'tiny-llama'));
  const ps = [[5, 17, 300], [42], [7, 99, 1, 2, 3]];
  const g = generate(p.model, ps, { maxNewTokens: 7, temperature: 0.8, seed: 3 });
  const b = layoutRollout(ps, g.tokens, g.finishReason, 0);
  const lp = rolloutForward(p.model, b, { temperature: 0.8, chunk: 2 }).logprobs;
  let maxErr = 0;
  g.logprobs.forEach((row, i) => row.forEach((v, j) => (maxErr = Math.max(maxErr, Math.abs(v - lp[i * b.R + j]!)))));
  assert.ok(maxErr < 2e-5, `llama: recomputed log-probs differ by ${maxErr}`);
  p.model.dispose();
});

test('scores: missing_eos_penalty is subtracted from responses without EOS; scorer errors are clear', async () => {
  const p = tinyPolicy(3);
  const dir = tmp();
  try {
    favourEos(p.model, 1.2);
    const tr = new PPOTrainer({
      args: { ...base, output_dir: dir, per_device_train_batch_size: 8, response_length: 5, stop_token: 'eos', missing_eos_penalty: 1.5 },
      model: p,
      rewardFuncs: async (_p, r) => r.map(() => 2),
      trainDataset: prompts,
      eosTokenId: EOS,
    });
    const batch = tr.rollout(prompts.slice(0, 8));
    const s = await tr.score(prompts.slice(0, 8), batch);
    batch.responseIds.forEach((r, i) => assert.equal(s[i], r.includes(EOS) ? 2 : 0.5));
    assert.ok(s.includes(2) && s.includes(0.5), 'both kinds occur');
    const bad = new PPOTrainer({ args: { ...base, output_dir: dir, per_device_train_batch_size: 8, response_length: 5 }, model: p, rewardFuncs: () => [1, 2], trainDataset: prompts });
    await assert.rejects(bad.score(prompts.slice(0, 8), batch), /scorer returned 2 scores for 8 responses/);
    const nan = new PPOTrainer({ args: { ...base, output_dir: dir, per_device_train_batch_size: 8, response_length: 5 }, model: p, rewardFuncs: (_p, r) => r.map(() => NaN), trainDataset: prompts });
    await assert.rejects(nan.score(prompts.slice(0, 8), batch), /finite/);
    for (const t of [tr, bad, nan]) t.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reward model scores: the score head at the last real token, independent of padding and batching', () => {
  const rm = tinyRewardModel(5);
  const seqs = [
    [4, 5, 6],
    [7, 8],
    [9, 10, 11, 12, 13],
  ];
  const got = rewardModelScores({ model: rm.model, score: rm.score! }, seqs, 2);
  seqs.forEach((s, i) => {
    const alone = noGrad(() => tidy(() => sequenceScore(rm.model.hidden(Int32Array.from(s), 1, s.length), rm.score!, lastTokenIndex(1, s.length, {})).item()));
    assert.ok(Math.abs(got[i]! - alone) < 1e-5, `row ${i}: ${got[i]} vs ${alone}`);
  });
  const f = rewardModelScorer(rm);
  const viaScorer = f(['a'], ['b'], { promptIds: [[4, 5]], responseIds: [[6]], finishReason: ['length'] }) as Float64Array;
  assert.ok(Math.abs(viaScorer[0]! - got[0]!) < 1e-6);
  rm.model.dispose();
});

test('config: TRL defaults, strict options, clear errors', () => {
  const c = PPOConfig.resolve({});
  assert.equal(c.kl_coef, 0.05);
  assert.equal(c.kl_estimator, 'k1');
  assert.equal(c.cliprange, 0.2);
  assert.equal(c.cliprange_value, 0.2);
  assert.equal(c.vf_coef, 0.1);
  assert.equal(c.gamma, 1);
  assert.equal(c.lam, 0.95);
  assert.equal(c.num_ppo_epochs, 4);
  assert.equal(c.response_length, 53);
  assert.equal(c.temperature, 0.7);
  assert.equal(c.learning_rate, 3e-6);
  assert.equal(c.missing_eos_penalty, null);
  assert.throws(() => PPOConfig.resolve({ kl_estimatr: 'k3' }), /PPOConfig: kl_estimatr: unknown option \(did you mean kl_estimator\?\)/);
  assert.throws(() => PPOConfig.resolve({ kl_estimator: 'k2' }), /PPOConfig: kl_estimator: must be one of k1, k3, got "k2"/);
  assert.throws(() => PPOConfig.resolve({ stop_token: 'eos', stop_token_id: 3 }), /stop_token_id: set stop_token or stop_token_id, not both/);
  assert.throws(() => PPOConfig.resolve({ per_device_train_batch_size: 6, num_mini_batches: 4 }), /multiple of num_mini_batches/);
  assert.throws(() => PPOConfig.resolve({ missing_eos_penalty: 'x' }), /PPOConfig: missing_eos_penalty: must be a number >= 0 \(or null\), got "x"/);
  assert.throws(() => PPOConfig.resolve({ lam: 1.5 }), /PPOConfig: lam: must be a number in \[0, 1\], got 1.5/);
  // a negative learning rate would train uphill: refused
  assert.throws(() => PPOConfig.resolve({ learning_rate: -1e-3 }), /PPOConfig: learning_rate: must be a number >= 0, got -0.001/);
});

test('PPO raises the mean score of fresh rollouts while the KL to the reference stays bounded', async () => {
  const p = tinyPolicy(1);
  const dir = tmp();
  try {
    const before = freshScore(p.model, targetFraction, 123);
    const tr = new PPOTrainer({
      args: { ...base, output_dir: dir, learning_rate: 3e-3, per_device_train_batch_size: 8, gradient_accumulation_steps: 2, num_mini_batches: 2, response_length: 6, temperature: 1, max_steps: 40 },
      model: p,
      rewardFuncs: targetFraction,
      trainDataset: prompts,
    });
    const last = (await tr.train({ quiet: true })).metrics;
    const after = freshScore(p.model, targetFraction, 123);
    const kls = tr.history.map((m) => m['objective/kl']!);
    console.log(`PPO: fresh-rollout score ${before.toFixed(3)} -> ${after.toFixed(3)}; objective/kl first ${kls[0]} max ${Math.max(...kls).toFixed(3)} last ${kls.at(-1)!.toFixed(3)}`);
    assert.ok(before < 0.2, `untrained score ${before}`);
    assert.ok(after > before + 0.3, `score ${before} -> ${after}`);
    assert.equal(kls[0], 0, 'the first rollout is sampled from the reference itself');
    // (a policy that only emitted target tokens would be ~23 nats per 6-token episode from this reference)
    assert.ok(Math.max(...kls) < 10, `KL per episode stays bounded (max ${Math.max(...kls)})`);
    assert.ok(kls.at(-1)! > 0.05, 'the policy did move away from the reference');
    const want = [
      'objective/kl',
      'objective/entropy',
      'objective/scores',
      'objective/rlhf_reward',
      'objective/non_score_reward',
      'policy/approxkl_avg',
      'policy/clipfrac_avg',
      'loss/policy_avg',
      'loss/value_avg',
      'val/clipfrac_avg',
      'policy/entropy_avg',
      'val/vpred',
      'eps',
      'lr',
      'episode',
    ];
    for (const k of want) assert.ok(Number.isFinite(last[k]), `metric ${k} = ${last[k]}`);
    assert.equal(last.episode, 40 * 16);
    close(last['objective/rlhf_reward']!, last['objective/scores']! + last['objective/non_score_reward']!);
    close(last['objective/non_score_reward']!, -0.05 * last['objective/kl']!);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.equal(lines.length, 40);
    assert.deepEqual(
      lines.map((l) => l.step),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    // the value head learnt something: its predictions moved off zero towards the returns
    assert.ok(Math.abs(tr.history.at(-1)!['val/vpred']!) > 1e-3);
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function close(a: number, b: number, tol = 1e-9): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
}

test('LoRA policy: only adapters and the value head train; the reference is the policy with adapters off', async () => {
  const p = tinyPolicy(2);
  p.model.addLora({ r: 4, alpha: 8, targetModules: ['c_attn', 'c_fc'] }, 3);
  const baseWeights = new Map([...p.model.params].map(([n, t]) => [n, t.toArray()]));
  const dir = tmp();
  try {
    const tr = new PPOTrainer({
      args: { ...base, output_dir: dir, learning_rate: 1e-2, per_device_train_batch_size: 8, response_length: 4, temperature: 1, max_steps: 3 },
      model: p,
      rewardFuncs: targetFraction,
      trainDataset: prompts,
    });
    assert.equal(tr.ref, null, 'no copy is made');
    await tr.train({ quiet: true });
    assert.equal(tr.trainable.length, 2 * p.model.adapters.size + 2);
    for (const [n, t] of p.model.params) assert.deepEqual(t.toArray(), baseWeights.get(n), `${n} is frozen`);
    assert.equal(tr.history[0]!['objective/kl'], 0, 'adapters start at zero: policy = reference');
    assert.ok(tr.history[2]!['objective/kl']! !== 0, 'after updates the adapters move the policy');
    assert.ok([...p.model.adapters.values()].some((a) => a.B.toArray().some((v) => v !== 0)));
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resume: a run restarted from checkpoint-3 ends bitwise equal to an uninterrupted 6-update run (adaptive KL, reward model)', async () => {
  const dirA = tmp(),
    dirB = tmp();
  const rm = tinyRewardModel(8);
  const cfg = {
    ...base,
    learning_rate: 3e-3,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
    num_mini_batches: 2,
    num_ppo_epochs: 2,
    response_length: 5,
    temperature: 1,
    adap_kl_ctrl: true,
    target: 0.5,
    horizon: 50,
    lr_scheduler_type: 'linear',
    max_steps: 6,
    save_steps: 3,
    whiten_rewards: true,
  } as const;
  const make = (dir: string, resume: string | false): PPOTrainer =>
    new PPOTrainer({ args: { ...cfg, output_dir: dir, resume_from_checkpoint: resume }, model: tinyPolicy(4), rewardFuncs: rewardModelScorer(rm), trainDataset: prompts });
  try {
    const a = make(dirA, false);
    await a.train({ quiet: true });
    assert.ok(existsSync(join(dirA, 'checkpoint-3', 'model.safetensors')), 'the policy is saved in the Hugging Face layout');
    assert.ok(existsSync(join(dirA, 'checkpoint-3', 'extra.safetensors')), 'the value head is saved');
    const st = JSON.parse(readFileSync(join(dirA, 'checkpoint-3', 'trainer_state.json'), 'utf8'));
    assert.equal(st.global_step, 3);
    assert.equal(st.extra.kl_controller.kind, 'adaptive');
    assert.notEqual(st.extra.kl_controller.value, 0.05, 'the controller moved');
    // the checkpointed model loads as an ordinary Hugging Face model
    const loaded = loadPretrained(join(dirA, 'checkpoint-3'));
    assert.equal(loaded.model.config.vocabSize, V);
    loaded.model.dispose();

    const b = make(dirB, join(dirA, 'checkpoint-3'));
    await b.train({ quiet: true });
    assert.equal(b.globalStep, 6);
    assert.deepEqual(
      b.history.map((m) => m.step),
      [4, 5, 6],
    );
    for (const [n, t] of a.policy.params) assert.deepEqual(b.policy.params.get(n)!.toArray(), t.toArray(), `policy ${n}`);
    assert.deepEqual(b.valueHead.weight.toArray(), a.valueHead.weight.toArray());
    assert.deepEqual(b.valueHead.bias.toArray(), a.valueHead.bias.toArray());
    assert.equal(b.klController.value, a.klController.value);
    assert.deepEqual(b.optimizer!.getState(), a.optimizer!.getState());
    assert.deepEqual(b.history.at(-1), { ...a.history.at(-1), eps: b.history.at(-1)!.eps, train_runtime: b.history.at(-1)!.train_runtime });
    // and the run did change the weights (the comparison is not vacuous)
    const init = tinyPolicy(4);
    assert.notDeepEqual(init.model.params.get('transformer.h.0.attn.c_attn.weight')!.toArray(), a.policy.params.get('transformer.h.0.attn.c_attn.weight')!.toArray());
    init.model.dispose();
    a.dispose();
    b.dispose();
  } finally {
    rm.model.dispose();
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
});

test('a non-finite loss stops the run with a diagnostic naming the last good checkpoint', async () => {
  const dir = tmp();
  try {
    const tr = new PPOTrainer({
      args: { ...base, output_dir: dir, learning_rate: 1e-3, per_device_train_batch_size: 8, response_length: 3, save_steps: 1, max_steps: 5 },
      model: tinyPolicy(5),
      rewardFuncs: targetFraction,
      trainDataset: prompts,
    });
    const run = tr.train({
      quiet: true,
      onLog: (m) => {
        if (m.step === 2) tr.valueHead.weight.data[0] = NaN;
      },
    });
    await assert.rejects(run, (e: Error) => e.name === 'Error' && /ppo: the PPO loss is NaN at step 3/.test(e.message) && e.message.includes(`Last good checkpoint: ${join(dir, 'checkpoint-2')}`));
    assert.ok(existsSync(join(dir, 'checkpoint-2', 'trainer_state.json')) && !existsSync(join(dir, 'checkpoint-3')));
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runPPO: model directory + tokenizer + JSONL prompts + a scorer module → trained model, value head and metrics', async () => {
  const dir = tmp();
  try {
    const tokDir = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures', 'tok-bytelevel');
    const modelDir = join(dir, 'model');
    savePretrained(modelDir, tinyPolicy(6, 2000));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(modelDir, f));
    const data = join(dir, 'prompts.jsonl');
    writeFileSync(data, ['the cat', 'a dog', 'hello there', 'once upon', 'in the', 'we are', 'it is', 'so far'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
    const scorerPath = join(dir, 'scorer.mjs');
    writeFileSync(scorerPath, 'export default async (prompts, responses) => responses.map((r) => (r.match(/e/g) ?? []).length / Math.max(1, r.length));\n');
    const out = join(dir, 'out');
    const res = await runTraining(
      'ppo',
      {
        model_name_or_path: modelDir,
        train_file: data,
        reward_funcs: scorerPath,
        output_dir: out,
        per_device_train_batch_size: 4,
        response_length: 4,
        total_episodes: 8,
        num_ppo_epochs: 1,
        learning_rate: 1e-3,
        logging_steps: 1,
        save_steps: 1,
        disable_tqdm: true,
        stop_token: 'eos',
        missing_eos_penalty: 0.1,
      },
      { quiet: true },
    );
    const last = res.metrics;
    assert.equal(res.globalStep, 2);
    assert.equal(res.output_dir, out);
    assert.equal(last.step, 2);
    assert.equal(last.episode, 8);
    assert.ok(Number.isFinite(last['objective/scores']));
    const trained = loadPretrained(out);
    assert.equal(trained.model.config.vocabSize, 2000);
    trained.model.dispose();
    assert.ok(existsSync(join(out, 'tokenizer.json')));
    assert.deepEqual(readSafetensors(join(out, 'value_head.safetensors')).tensors.get('v_head.weight')!.shape, [1, 32]);
    assert.ok(existsSync(join(out, 'checkpoint-2', 'trainer_state.json')));
    await assert.rejects(runTraining('ppo', { model_name_or_path: modelDir, train_file: data, output_dir: join(dir, 'o2') }), /a reward_model_path or reward_funcs is required/);
    await assert.rejects(
      runTraining('ppo', { model_name_or_path: modelDir, train_file: data, reward_funcs: scorerPath, output_dir: join(dir, 'o2'), cliprnage: 0.1 }),
      /ppo config: cliprnage: unknown option \(did you mean cliprange\?\)/,
    );
    // the output folder of a finished run is not reused silently
    await assert.rejects(
      runTraining('ppo', { model_name_or_path: modelDir, train_file: data, reward_funcs: scorerPath, output_dir: out, max_steps: 1 }),
      /ppo: output_dir \S+ is not empty .*set overwrite_output_dir/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
