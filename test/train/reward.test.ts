// Reward model: learns a held-out synthetic preference (more x tokens is better) to >= 90% accuracy; the
// Bradley–Terry loss with margins and center_rewards_coefficient equals a hand computation; the score head of a
// causal LM starts as transformers' N(0, 0.02²); the result is saved as *ForSequenceClassification and reloads to
// the same scores; runReward end to end; strict config.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { padTokenId } from '../../src/data/index.js';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { parseConfig } from '../../src/io/config.js';
import { type Pretrained, loadPretrained, savePretrained } from '../../src/io/pretrained.js';
import { Transformer } from '../../src/models/transformer.js';
import { bradleyTerryLoss } from '../../src/train/bradley-terry.js';
import { RewardConfig, RewardTrainer, loadRewardData, loadRewardModel, rewardScores, toRewardModel } from '../../src/train/reward.js';
import { runTraining } from '../../src/train/run.js';
import { countingPreferenceTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const tok = wordTokenizer();
const PAD = padTokenId(tok);

test('the reward model reaches >= 90% accuracy on held-out pairs (chosen has more x tokens)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = RewardConfig.resolve({
      output_dir: dir,
      learning_rate: 3e-3,
      lr_scheduler_type: 'constant',
      max_steps: 100,
      per_device_train_batch_size: 16,
      logging_steps: 50,
      save_steps: 0,
      disable_tqdm: true,
    });
    const train = await loadRewardData(countingPreferenceTask(512, 1), tok, args);
    const held = await loadRewardData(countingPreferenceTask(128, 2), tok, args);
    const model = toRewardModel(tinyGpt2(tok.vocabSize, 1), { seed: 1, padTokenId: PAD });
    const trainer = new RewardTrainer({ args, model, trainDataset: train, evalDataset: held });
    const before = (await trainer.evaluate())!;
    await trainer.train({ quiet: true });
    const after = (await trainer.evaluate())!;
    assert.ok(before.eval_accuracy! < 0.7 && Math.abs(before.eval_margin!) < 0.05, `untrained: ${JSON.stringify(before)}`);
    assert.ok(after.eval_accuracy! >= 0.9, `held-out accuracy ${after.eval_accuracy}`);
    assert.ok(after.eval_margin! > 2, `held-out margin ${after.eval_margin}`);
    assert.ok(after.eval_loss! < 0.2 && after.eval_loss! < before.eval_loss! - 0.4, `eval loss ${before.eval_loss} → ${after.eval_loss}`);
    const rec = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>)[0]!;
    for (const k of ['loss', 'grad_norm', 'learning_rate', 'epoch', 'num_tokens', 'accuracy', 'margin', 'mean_reward', 'min_reward', 'max_reward']) assert.ok(Number.isFinite(rec[k]), k);
    assert.ok(rec.min_reward! <= rec.mean_reward! && rec.mean_reward! <= rec.max_reward!);
  } finally {
    cleanup();
  }
});

test('Bradley–Terry loss with margin and center_rewards_coefficient equals the hand-computed value (and gradient)', () => {
  const rc = [1.5, -0.25, 0.75, 2.0],
    rr = [0.5, 0.5, 1.0, -1.0],
    m = [0.3, 0, 1.2, 0.5],
    c = 0.01;
  const logsig = (x: number) => -Math.log1p(Math.exp(-x));
  let bt = 0,
    centre = 0;
  for (let i = 0; i < 4; i++) {
    bt += -logsig(rc[i]! - rr[i]! - m[i]!);
    centre += (rc[i]! + rr[i]!) ** 2;
  }
  const want = bt / 4 + (c * centre) / 4;
  tidy(() => {
    const a = Tensor.param(Tensor.from(rc)),
      b = Tensor.param(Tensor.from(rr));
    const loss = bradleyTerryLoss(a, b, { margin: m, centerRewardsCoefficient: c });
    assert.ok(Math.abs(loss.item() - want) < 1e-6, `${loss.item()} vs ${want}`);
    loss.backward();
    // dL/dr_c = −σ(−(r_c − r_r − m))/N + 2c(r_c + r_r)/N
    const ga = a.grad!.toArray();
    for (let i = 0; i < 4; i++) {
      const d = rc[i]! - rr[i]! - m[i]!;
      const g = -1 / (1 + Math.exp(d)) / 4 + (2 * c * (rc[i]! + rr[i]!)) / 4;
      assert.ok(Math.abs(ga[i]! - g) < 1e-6, `grad ${i}: ${ga[i]} vs ${g}`);
    }
    // no margin, no centring: plain −log σ(r_c − r_r)
    const plain = bradleyTerryLoss(Tensor.from(rc), Tensor.from(rr)).item();
    const wantPlain = rc.reduce((s, x, i) => s - logsig(x - rr[i]!), 0) / 4;
    assert.ok(Math.abs(plain - wantPlain) < 1e-6);
    a.dispose();
    b.dispose();
  });
  // margins come from the dataset's margin column, by record
  return loadRewardData(
    [
      { prompt: 'a =', chosen: ' x', rejected: ' y', margin: 0.5 },
      { prompt: 'b =', chosen: ' x x', rejected: ' y', margin: 2 },
    ],
    tok,
    RewardConfig.resolve({}),
  ).then((d) =>
    assert.deepEqual(
      d.map((e) => e.margin),
      [0.5, 2],
    ),
  );
});

test('score head from a causal LM: N(0, 0.02²), seeded; reward scores read at the last non-pad token', () => {
  const lm = tinyGpt2(tok.vocabSize, 5, { hidden: 256, layers: 1 });
  const rm = toRewardModel(lm, { seed: 3, padTokenId: PAD });
  assert.equal(rm.hfConfig.architecture, 'GPT2ForSequenceClassification');
  assert.equal(rm.hfConfig.numLabels, 1);
  assert.deepEqual(rm.score!.shape, [1, 256]);
  const w = rm.score!.toArray();
  const mean = w.reduce((s, x) => s + x, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
  assert.ok(std > 0.016 && std < 0.024 && Math.abs(mean) < 0.005, `score init mean ${mean}, std ${std}`);
  assert.deepEqual(toRewardModel(tinyGpt2(tok.vocabSize, 5, { hidden: 256, layers: 1 }), { seed: 3, padTokenId: PAD }).score!.toArray(), w);
  // a padded row scores as the same row unpadded: the score is read at the last real token
  const ids = Int32Array.from([5, 6, 7, 0, PAD, PAD, 5, 6, 7, 8, 9, 0]);
  const s = noGrad(() => rewardScores(rm, ids, 2, 6).toArray());
  const alone = noGrad(() => rewardScores(rm, Int32Array.from([5, 6, 7, 0]), 1, 4).toArray());
  assert.ok(Math.abs(s[0]! - alone[0]!) < 1e-6, `${s[0]} vs ${alone[0]}`);
});

test('saved as GPT2ForSequenceClassification / LlamaForSequenceClassification: the layout transformers loads, same scores after reload', () => {
  const { dir, cleanup } = tempDir();
  try {
    const ids = Int32Array.from([5, 6, 7, 8, 0, PAD, 9, 10, 11, 12, 3, 0]);
    // GPT-2 (tied embeddings)
    const g = toRewardModel(tinyGpt2(tok.vocabSize, 2), { seed: 1, padTokenId: PAD });
    savePretrained(join(dir, 'g'), g);
    const cfg = JSON.parse(readFileSync(join(dir, 'g', 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(cfg.architectures, ['GPT2ForSequenceClassification']);
    assert.deepEqual(cfg.id2label, { 0: 'LABEL_0' });
    assert.equal(cfg.pad_token_id, PAD);
    const names = [...readSafetensors(join(dir, 'g', 'model.safetensors')).tensors.keys()];
    assert.ok(names.includes('score.weight') && !names.includes('lm_head.weight'));
    const g2 = loadPretrained(join(dir, 'g'));
    const a = noGrad(() => rewardScores(g, ids, 2, 6).toArray()),
      b = noGrad(() => rewardScores(g2, ids, 2, 6).toArray());
    assert.deepEqual(b, a);
    // Llama with an untied LM head: the head is dropped, the score head added
    const lc = parseConfig({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: tok.vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      tie_word_embeddings: false,
      bos_token_id: 0,
      eos_token_id: 0,
    });
    const llm: Pretrained = { model: Transformer.random(lc.model, 4), hfConfig: lc, generation: null, score: null };
    savePretrained(join(dir, 'llm'), llm);
    const l = loadRewardModel(join(dir, 'llm'), { seed: 2, padTokenId: PAD });
    assert.equal(l.hfConfig.architecture, 'LlamaForSequenceClassification');
    assert.equal(l.model.params.has('lm_head.weight'), false);
    savePretrained(join(dir, 'lrm'), l);
    const lnames = [...readSafetensors(join(dir, 'lrm', 'model.safetensors')).tensors.keys()];
    assert.ok(lnames.includes('score.weight') && !lnames.includes('lm_head.weight'));
    const l2 = loadRewardModel(join(dir, 'lrm'), { padTokenId: PAD });
    assert.deepEqual(
      noGrad(() => rewardScores(l2, ids, 2, 6).toArray()),
      noGrad(() => rewardScores(l, ids, 2, 6).toArray()),
    );
  } finally {
    cleanup();
  }
});

test('runReward: a causal LM in, a trained sequence classifier out', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 3), tok);
    const trainFile = writeJsonl(join(dir, 'train.jsonl'), countingPreferenceTask(256, 21));
    writeJsonl(join(dir, 'test.jsonl'), countingPreferenceTask(64, 22));
    const out = join(dir, 'rm');
    const res = await runTraining(
      'reward',
      {
        model_name_or_path: base,
        dataset_path: dir,
        output_dir: out,
        learning_rate: 3e-3,
        max_steps: 60,
        per_device_train_batch_size: 16,
        logging_steps: 20,
        save_steps: 0,
        center_rewards_coefficient: 0.01,
      },
      { quiet: true },
    );
    assert.ok(existsSync(join(trainFile)));
    assert.equal(res.globalStep, 60);
    assert.ok(res.eval!.eval_accuracy! >= 0.85, `eval accuracy ${res.eval!.eval_accuracy}`);
    const rm = loadPretrained(out);
    assert.equal(rm.hfConfig.architecture, 'GPT2ForSequenceClassification');
    assert.ok(rm.score && rm.score.shape[0] === 1);
    assert.ok(existsSync(join(out, 'tokenizer.json')));
  } finally {
    cleanup();
  }
});

test('Reward config: TRL defaults and strict checks', () => {
  const c = RewardConfig.resolve({});
  assert.equal(c.max_length, 1024);
  assert.equal(c.center_rewards_coefficient, null);
  assert.equal(c.disable_dropout, true);
  assert.equal(RewardConfig.resolve({ center_rewards_coefficient: '0.01' }).center_rewards_coefficient, 0.01);
  assert.throws(() => RewardConfig.resolve({ center_rewards_coefficient: -1 }), /RewardConfig: center_rewards_coefficient: must be a number >= 0 \(or null\), got -1/);
  assert.throws(() => RewardConfig.resolve({ centre_rewards_coefficient: 0.01 }), /RewardConfig: centre_rewards_coefficient: unknown option \(did you mean center_rewards_coefficient\?\)/);
});
