// DPO: raises rewards/accuracies and rewards/margins on held-out pairs; every loss type equals its formula on a
// fixed batch of log-probs; the batch loss equals the formula on hand-computed sequence log-probs; the LoRA-off
// reference equals a separately loaded base model; precomputed reference log-probs train exactly as on-the-fly
// ones; runDPO end to end (LoRA adapter out, precomputation with a separate reference); strict config.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type PreferenceExample, padTokenId } from '../../src/data/index.js';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { Transformer } from '../../src/models/transformer.js';
import { DPOConfig, DPOTrainer, dpoLossFromLogps, loadDPOData } from '../../src/train/dpo.js';
import { runTraining } from '../../src/train/run.js';
import { preferenceTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const tok = wordTokenizer();
const PAD = padTokenId(tok);
/** An independent copy of a model's weights (fromStateDict adopts the arrays it is given, so they are sliced). */
const copyOf = (m: Transformer) => Transformer.fromStateDict(m.config, new Map([...m.stateDict()].map(([n, e]) => [n, { shape: e.shape, data: e.data.slice() }]))).model;

test('DPO raises rewards/accuracies and rewards/margins on held-out pairs', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = DPOConfig.resolve({
      output_dir: dir,
      learning_rate: 1e-3,
      lr_scheduler_type: 'constant',
      max_steps: 50,
      per_device_train_batch_size: 16,
      logging_steps: 25,
      save_steps: 0,
      eval_strategy: 'steps',
      eval_steps: 50,
      disable_tqdm: true,
    });
    const train = await loadDPOData(preferenceTask(256, 1), tok, args);
    const held = await loadDPOData(preferenceTask(64, 2), tok, args);
    const policy = tinyGpt2(tok.vocabSize, 1);
    const trainer = new DPOTrainer({ args, model: policy, refModel: copyOf(policy.model), trainDataset: train, evalDataset: held, padTokenId: PAD });
    const before = (await trainer.evaluate())!;
    await trainer.train({ quiet: true });
    const after = (await trainer.evaluate())!;
    // the policy starts as the reference: every implicit reward is 0, so no pair is ranked right yet
    assert.equal(before['eval_rewards/accuracies'], 0);
    assert.equal(before['eval_rewards/margins'], 0);
    assert.ok(Math.abs(before.eval_loss! - Math.LN2) < 1e-6);
    assert.ok(after['eval_rewards/accuracies']! >= 0.95, `held-out accuracies ${after['eval_rewards/accuracies']}`);
    assert.ok(after['eval_rewards/margins']! > 0.5, `held-out margins ${after['eval_rewards/margins']}`);
    assert.ok(after.eval_loss! < 0.45, `held-out loss ${after.eval_loss}`);
    assert.ok(after['eval_logps/chosen']! > before['eval_logps/chosen']! && after['eval_logps/rejected']! < before['eval_logps/rejected']!);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    const names = ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'logits/chosen', 'logits/rejected'];
    for (const k of ['loss', 'grad_norm', 'learning_rate', 'epoch', ...names]) assert.ok(Number.isFinite(lines[0]![k]), k);
    const ev = lines.find((l) => 'eval_loss' in l)!;
    for (const k of names) assert.ok(Math.abs(ev[`eval_${k}`]! - after[`eval_${k}`]!) < 1e-9, `eval_${k}`);
  } finally {
    cleanup();
  }
});

test('each loss type equals its formula on a fixed batch of log-probs', () => {
  const pc = [-3.0, -5.5, -2.25, -7.0],
    pr = [-4.0, -5.0, -7.5, -6.0];
  const rc = [-3.5, -5.0, -3.0, -6.5],
    rr = [-3.75, -5.25, -5.5, -6.25];
  const ls = (x: number) => -Math.log1p(Math.exp(-x)); // log σ(x)
  const cases: { loss_type: 'sigmoid' | 'ipo' | 'hinge' | 'robust'; beta: number; label_smoothing: number; per: (h: number, b: number, e: number) => number }[] = [
    { loss_type: 'sigmoid', beta: 0.1, label_smoothing: 0, per: (h, b) => -ls(b * h) },
    { loss_type: 'sigmoid', beta: 0.5, label_smoothing: 0.2, per: (h, b, e) => -ls(b * h) * (1 - e) - ls(-b * h) * e },
    { loss_type: 'ipo', beta: 0.25, label_smoothing: 0, per: (h, b) => (h - 1 / (2 * b)) ** 2 },
    { loss_type: 'hinge', beta: 0.5, label_smoothing: 0, per: (h, b) => Math.max(0, 1 - b * h) },
    { loss_type: 'robust', beta: 0.3, label_smoothing: 0.1, per: (h, b, e) => (-ls(b * h) * (1 - e) + ls(-b * h) * e) / (1 - 2 * e) },
  ];
  for (const c of cases) {
    let want = 0,
      acc = 0,
      margin = 0;
    for (let i = 0; i < 4; i++) {
      const h = pc[i]! - rc[i]! - (pr[i]! - rr[i]!);
      want += c.per(h, c.beta, c.label_smoothing) / 4;
      const cr = c.beta * (pc[i]! - rc[i]!),
        rj = c.beta * (pr[i]! - rr[i]!);
      if (cr > rj) acc += 0.25;
      margin += (cr - rj) / 4;
    }
    tidy(() => {
      const r = dpoLossFromLogps(Tensor.from(pc), Tensor.from(pr), rc, rr, c);
      const got = r.loss.item();
      assert.ok(Math.abs(got - want) < 2e-6 * Math.max(1, Math.abs(want)), `${c.loss_type} β=${c.beta} ε=${c.label_smoothing}: ${got} vs ${want}`);
      assert.ok(Math.abs(r.metrics['rewards/accuracies']! - acc) < 1e-12, `${c.loss_type} accuracies`);
      assert.ok(Math.abs(r.metrics['rewards/margins']! - margin) < 1e-6, `${c.loss_type} margins`);
      assert.ok(Math.abs(r.metrics['logps/chosen']! - pc.reduce((s, x) => s + x, 0) / 4) < 1e-6);
    });
  }
  // the hinge case has a pair past the hinge (zero loss) and the fixed batch mixes won and lost pairs
  assert.ok(pc.some((x, i) => 0.5 * (x - rc[i]! - pr[i]! + rr[i]!) > 1));
});

test('the batch loss is the formula on hand-computed sequence log-probs (sums; per-token means for IPO)', async () => {
  const rows = [
    { prompt: 'a b =', chosen: ' x x', rejected: ' y' },
    { prompt: 'c =', chosen: ' x a b', rejected: ' y y y y' },
  ];
  const pol = tinyGpt2(tok.vocabSize, 8),
    ref = tinyGpt2(tok.vocabSize, 9);
  for (const loss_type of ['sigmoid', 'ipo'] as const) {
    const args = DPOConfig.resolve({ output_dir: '/nonexistent', loss_type, beta: 0.2 });
    const data = await loadDPOData(rows, tok, args);
    const trainer = new DPOTrainer({ args, model: pol, refModel: ref.model, trainDataset: data, padTokenId: PAD });
    const batch = trainer.collate(data, Int32Array.from([0, 1]), 'train');
    const got = tidy(() => trainer.batchLoss(batch).loss.item());
    const seqLogp = (m: Transformer, ex: PreferenceExample, which: 'chosenIds' | 'rejectedIds'): number => {
      const ids = Int32Array.from([...ex.promptIds, ...ex[which]]);
      const lg = noGrad(() => m.forward(ids, 1, ids.length).toArray());
      const V = tok.vocabSize;
      let s = 0;
      for (let t = ex.promptIds.length; t < ids.length; t++) {
        const row = lg.subarray((t - 1) * V, t * V);
        const max = Math.max(...row);
        s += row[ids[t]!]! - max - Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      }
      return loss_type === 'ipo' ? s / ex[which].length : s;
    };
    let want = 0;
    for (const ex of data) {
      const h = seqLogp(pol.model, ex, 'chosenIds') - seqLogp(ref.model, ex, 'chosenIds') - (seqLogp(pol.model, ex, 'rejectedIds') - seqLogp(ref.model, ex, 'rejectedIds'));
      want += (loss_type === 'ipo' ? (h - 1 / (2 * 0.2)) ** 2 : Math.log1p(Math.exp(-0.2 * h))) / 2;
    }
    assert.ok(Math.abs(got - want) < 1e-5 * Math.max(1, want), `${loss_type}: ${got} vs ${want}`);
  }
});

test('the LoRA-off reference gives the same log-probs as a separately loaded base model; precomputed = on the fly', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 6), tok);
    const args = DPOConfig.resolve({
      output_dir: join(dir, 'a'),
      learning_rate: 5e-3,
      lr_scheduler_type: 'constant',
      max_steps: 8,
      per_device_train_batch_size: 8,
      logging_steps: 1,
      save_steps: 0,
      disable_tqdm: true,
    });
    const train = await loadDPOData(preferenceTask(48, 3), tok, args);
    const policy = loadPretrained(base);
    const t1 = new DPOTrainer({ args, model: policy, peftConfig: { r: 4, lora_alpha: 8, lora_dropout: 0 }, trainDataset: train, padTokenId: PAD });
    await t1.train({ quiet: true });
    const batch = t1.collate(
      train.slice(0, 8),
      Int32Array.from({ length: 8 }, (_, i) => i),
      'train',
    );
    const off = t1.referenceLogps(batch);
    const separate = new DPOTrainer({ args: { ...args, output_dir: join(dir, 'b') }, model: tinyGpt2(tok.vocabSize, 0), refModel: loadPretrained(base).model, trainDataset: train, padTokenId: PAD });
    const sep = separate.referenceLogps(batch);
    assert.deepEqual(off.chosen, sep.chosen);
    assert.deepEqual(off.rejected, sep.rejected);
    // the trained adapters do change the policy: with them on, the log-probs differ
    const on = tidy(() => t1.batchLoss(batch).metrics['logps/chosen']!);
    assert.ok(Math.abs(on - off.chosen.reduce((s, x) => s + x, 0) / 8) > 0.05, 'LoRA training moved the policy');

    // precompute_ref_log_probs: the same losses, step by step, as computing the reference on the fly
    const run = async (precompute: boolean, out: string) => {
      const a = { ...args, output_dir: join(dir, out), precompute_ref_log_probs: precompute, precompute_ref_batch_size: precompute ? 5 : null };
      const p = loadPretrained(base);
      const t = new DPOTrainer({ args: a, model: p, refModel: loadPretrained(base).model, trainDataset: train, padTokenId: PAD });
      await t.train({ quiet: true });
      return { losses: t.history.map((h) => h.loss!), weights: p.model.params.get('transformer.h.1.mlp.c_fc.weight')!.toArray() };
    };
    const fly = await run(false, 'fly'),
      pre = await run(true, 'pre');
    assert.equal(fly.losses.length, 8);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(fly.losses[i]! - pre.losses[i]!) < 1e-6, `step ${i + 1}: ${fly.losses[i]} vs ${pre.losses[i]}`);
    let maxDiff = 0;
    for (let i = 0; i < fly.weights.length; i++) maxDiff = Math.max(maxDiff, Math.abs(fly.weights[i]! - pre.weights[i]!));
    assert.ok(maxDiff < 1e-6, `weights after 8 steps differ by ${maxDiff}`);
    assert.ok(fly.losses[7]! < fly.losses[0]! - 0.05, `training lowers the loss: ${fly.losses[0]} → ${fly.losses[7]}`);
  } finally {
    cleanup();
  }
});

test('runDPO: LoRA policy with the adapters-off reference, and a separate precomputed reference', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 2), tok);
    const trainFile = writeJsonl(join(dir, 'train.jsonl'), preferenceTask(128, 31));
    const evalFile = writeJsonl(join(dir, 'eval.jsonl'), preferenceTask(32, 32));
    const common = {
      model_name_or_path: base,
      train_file: trainFile,
      eval_file: evalFile,
      max_steps: 40,
      per_device_train_batch_size: 16,
      logging_steps: 20,
      save_steps: 0,
      lr_scheduler_type: 'constant',
    };
    const a = await runTraining('dpo', { ...common, output_dir: join(dir, 'lora'), use_peft: true, lora_r: 8, lora_alpha: 16, learning_rate: 1e-2 }, { quiet: true });
    for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'tokenizer.json']) assert.ok(existsSync(join(dir, 'lora', f)), f);
    assert.ok(a.eval!['eval_rewards/accuracies']! >= 0.9, `LoRA DPO held-out accuracies ${a.eval!['eval_rewards/accuracies']}`);
    const b = await runTraining('dpo', { ...common, output_dir: join(dir, 'full'), ref_model_name_or_path: base, precompute_ref_log_probs: true, learning_rate: 1e-3 }, { quiet: true });
    assert.ok(existsSync(join(dir, 'full', 'model.safetensors')));
    assert.ok(b.eval!['eval_rewards/accuracies']! >= 0.9 && b.eval!['eval_rewards/margins']! > 0.3, JSON.stringify(b.eval));
    const last = readFileSync(join(dir, 'full', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>)
      .pop()!;
    assert.ok('eval_rewards/margins' in last && last.step === 40);
  } finally {
    cleanup();
  }
});

test('DPO config: TRL defaults and strict checks', async () => {
  const c = DPOConfig.resolve({});
  assert.equal(c.beta, 0.1);
  assert.equal(c.loss_type, 'sigmoid');
  assert.equal(c.learning_rate, 1e-6);
  assert.equal(c.max_length, 1024);
  assert.equal(c.max_prompt_length, 512);
  assert.equal(c.max_completion_length, null);
  assert.equal(c.truncation_mode, 'keep_end');
  assert.equal(c.precompute_ref_log_probs, false);
  assert.throws(() => DPOConfig.resolve({ loss_type: 'kto_pair' }), /DPOConfig: loss_type: must be one of sigmoid, ipo, hinge, robust, got "kto_pair"/);
  assert.throws(() => DPOConfig.resolve({ loss_type: 'robust', label_smoothing: 0.5 }), /DPOConfig: label_smoothing: robust DPO needs label_smoothing < 0.5/);
  assert.throws(() => DPOConfig.resolve({ beta: 0 }), /DPOConfig: beta: must be a number > 0, got 0/);
  assert.throws(() => DPOConfig.resolve({ bta: 0.1 }), /DPOConfig: bta: unknown option \(did you mean beta\?\)/);
  const same = tinyGpt2(tok.vocabSize, 0);
  assert.throws(() => new DPOTrainer({ args: c, model: same, refModel: same.model, trainDataset: [{} as PreferenceExample], padTokenId: PAD }), /the reference must not be the policy itself/);
  await assert.rejects(
    () => runTraining('dpo', { model_name_or_path: '/x', train_file: '/x.jsonl', ref_model: '/y' }),
    /dpo config: ref_model: unknown option \(did you mean ref_model_name_or_path\?\)/,
  );
});
