// SFT: learning a synthetic prompt → completion task raises held-out completion log-likelihood; the loss is the
// hand-computed mean over completion tokens only (or all tokens with completion_only_loss false); packing; the
// runSFT entry writes a Hugging Face model folder and TRL-named metrics; the config is resolved strictly.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type SequenceExample, collateSequences, padTokenId } from '../../src/data/index.js';
import { noGrad, tidy } from '../../src/engine/tensor.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { SFTConfig, SFTTrainer, evaluateSequences, loadSFTData } from '../../src/train/sft.js';
import { runTraining } from '../../src/train/run.js';
import { reversalTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const tok = wordTokenizer();

/** float64 log-softmax of one row of logits at a target. */
function logSoftmaxAt(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - max);
  return row[target]! - max - Math.log(s);
}

test('SFT raises the log-likelihood of held-out completions (reverse three letters)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = SFTConfig.resolve({
      output_dir: dir,
      learning_rate: 3e-3,
      lr_scheduler_type: 'constant',
      max_steps: 150,
      per_device_train_batch_size: 16,
      logging_steps: 50,
      save_steps: 0,
      eval_strategy: 'steps',
      eval_steps: 150,
      disable_tqdm: true,
    });
    const train = await loadSFTData(reversalTask(256, 1), tok, args);
    const held = await loadSFTData(reversalTask(64, 2), tok, args);
    const trainer = new SFTTrainer({ args, model: tinyGpt2(tok.vocabSize, 1), trainDataset: train, evalDataset: held, padTokenId: padTokenId(tok) });
    const before = (await trainer.evaluate())!;
    await trainer.train({ quiet: true });
    const after = (await trainer.evaluate())!;
    // mean completion log-prob per token = −eval_loss; a random 13-token model starts near −log 13 ≈ −2.56
    assert.ok(before.eval_loss! > 2.2, `before: ${before.eval_loss}`);
    assert.ok(after.eval_loss! < 0.3, `after: ${after.eval_loss}`);
    assert.ok(-after.eval_loss! > -before.eval_loss! + 2, `log-likelihood ${-before.eval_loss!} → ${-after.eval_loss!}`);
    assert.ok(after.eval_mean_token_accuracy! > 0.95, `accuracy ${after.eval_mean_token_accuracy}`);
    // metrics.jsonl under TRL's names (plus the base loop's), eval_ prefixed on eval steps
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    const trainRec = lines.find((l) => l.step === 50 && 'loss' in l)!;
    for (const k of ['loss', 'grad_norm', 'learning_rate', 'epoch', 'num_tokens', 'mean_token_accuracy', 'entropy']) assert.ok(Number.isFinite(trainRec[k]), `metric ${k}`);
    assert.equal(trainRec.epoch, 50 / 16);
    const evalRec = lines.find((l) => 'eval_loss' in l)!;
    assert.equal(evalRec.step, 150);
    assert.ok(Math.abs(evalRec.eval_loss! - after.eval_loss!) < 1e-12);
  } finally {
    cleanup();
  }
});

test('completion-only loss: the mean NLL over completion tokens only, as computed by hand', async () => {
  const rows = [
    { prompt: 'a b c =', completion: ' c b a' },
    { prompt: 'd e =', completion: ' e d x y' },
    { prompt: 'f g h a b =', completion: ' b' },
  ];
  for (const completionOnly of [true, false]) {
    const args = SFTConfig.resolve({ output_dir: '/nonexistent', completion_only_loss: completionOnly });
    const data = await loadSFTData(rows, tok, args);
    const p = tinyGpt2(tok.vocabSize, 3);
    const trainer = new SFTTrainer({ args, model: p, trainDataset: data, padTokenId: padTokenId(tok) });
    const batch = trainer.collate(data);
    const got = tidy(() => trainer.computeLoss(batch).loss.item());
    // by hand: float64 log-softmax of the model's logits; position t predicts token t+1
    const logits = noGrad(() => p.model.forward(batch.ids, batch.B, batch.T).toArray());
    const V = tok.vocabSize;
    let nll = 0,
      n = 0;
    data.forEach((ex, b) => {
      for (let t = 0; t + 1 < ex.ids.length; t++) {
        const inCompletion = ex.completionMask[t + 1] === 1;
        if (completionOnly && !inCompletion) continue;
        nll -= logSoftmaxAt(logits.subarray((b * batch.T + t) * V, (b * batch.T + t + 1) * V), ex.ids[t + 1]!);
        n++;
      }
    });
    // completion tokens (EOS included): 4 + 5 + 2; every next token of the three 8-token rows: 7 + 7 + 7
    assert.equal(n, completionOnly ? 11 : 21);
    assert.ok(Math.abs(got - nll / n) < 2e-6 * Math.max(1, nll / n), `loss ${got} vs hand ${nll / n}`);
  }
});

test('assistant_only_loss: the loss covers the assistant turns (and the EOS that ends the last one) only', async () => {
  const template = "{% for m in messages %}{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] + ' ' }}{% endgeneration %}{% else %}{{ m['content'] + ' ' }}{% endif %}{% endfor %}";
  const chatTok = wordTokenizer();
  chatTok.chatTemplate = template;
  const convo = [
    {
      messages: [
        { role: 'user', content: 'a b c =' },
        { role: 'assistant', content: 'c b a' },
      ],
    },
    {
      messages: [
        { role: 'user', content: 'd =' },
        { role: 'assistant', content: 'd' },
        { role: 'user', content: 'e f =' },
        { role: 'assistant', content: 'f e' },
      ],
    },
  ];
  const args = SFTConfig.resolve({ output_dir: '/nonexistent', assistant_only_loss: true });
  const data = await loadSFTData(convo, chatTok, args);
  const p = tinyGpt2(chatTok.vocabSize, 3);
  const trainer = new SFTTrainer({ args, model: p, trainDataset: data, padTokenId: padTokenId(chatTok) });
  const batch = trainer.collate(data);
  const got = tidy(() => trainer.computeLoss(batch).loss.item());
  const logits = noGrad(() => p.model.forward(batch.ids, batch.B, batch.T).toArray());
  const V = chatTok.vocabSize;
  // by hand: the assistant words are c b a <eos> / d, f e <eos>
  const assistantTokens = [
    ['c', 'b', 'a', '<eos>'],
    ['d', 'f', 'e', '<eos>'],
  ];
  let nll = 0,
    n = 0;
  data.forEach((ex, b) => {
    const want = assistantTokens[b]!.slice();
    for (let t = 1; t < ex.ids.length; t++) {
      if (!ex.assistantMask![t]) continue;
      assert.equal(chatTok.idToToken(ex.ids[t]!), want.shift(), `row ${b} token ${t}`);
      nll -= logSoftmaxAt(logits.subarray((b * batch.T + t - 1) * V, (b * batch.T + t) * V), ex.ids[t]!);
      n++;
    }
    assert.equal(want.length, 0, `row ${b}: every assistant token is in the mask`);
  });
  assert.equal(n, 8);
  assert.ok(Math.abs(got - nll / n) < 2e-6 * Math.max(1, nll / n), `loss ${got} vs hand ${nll / n}`);
});

test('packing: rows of max_length tokens, and the loss trains', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = SFTConfig.resolve({
      output_dir: dir,
      packing: true,
      max_length: 16,
      max_steps: 30,
      learning_rate: 3e-3,
      per_device_train_batch_size: 8,
      save_steps: 0,
      logging_steps: 30,
      disable_tqdm: true,
    });
    const raw = reversalTask(64, 5);
    const unpacked = await loadSFTData(raw, tok, args, false);
    const packed = await loadSFTData(raw, tok, args);
    const total = unpacked.reduce((s, e) => s + e.ids.length, 0);
    assert.equal(packed.length, Math.ceil(total / 16));
    assert.ok(packed.slice(0, -1).every((r) => r.ids.length === 16));
    const trainer = new SFTTrainer({ args, model: tinyGpt2(tok.vocabSize, 4), trainDataset: packed, evalDataset: unpacked, padTokenId: padTokenId(tok) });
    const before = (await trainer.evaluate())!.eval_loss!;
    await trainer.train({ quiet: true });
    const after = (await trainer.evaluate())!.eval_loss!;
    assert.ok(after < before - 0.5, `packed training: eval loss ${before} → ${after}`);
  } finally {
    cleanup();
  }
});

test('runSFT: files in, a Hugging Face model folder out, eval metrics logged', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const modelDir = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 7), tok);
    const trainFile = writeJsonl(join(dir, 'train.jsonl'), reversalTask(128, 11));
    const evalFile = writeJsonl(join(dir, 'eval.jsonl'), reversalTask(32, 12));
    const out = join(dir, 'out');
    // flag-style strings are converted; null spelled 'null' is accepted for nullable options
    const res = await runTraining(
      'sft',
      {
        model_name_or_path: modelDir,
        train_file: trainFile,
        eval_file: evalFile,
        output_dir: out,
        learning_rate: '3e-3',
        lr_scheduler_type: 'constant',
        max_steps: '60',
        per_device_train_batch_size: 16,
        logging_steps: 20,
        save_steps: 30,
        save_total_limit: 1,
        pad_to_multiple_of: 'null',
      },
      { quiet: true },
    );
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'metrics.jsonl']) assert.ok(existsSync(join(out, f)), f);
    assert.ok(existsSync(join(out, 'checkpoint-60')) && !existsSync(join(out, 'checkpoint-30')), 'save_total_limit keeps the newest checkpoint');
    assert.equal(res.globalStep, 60);
    const base = loadPretrained(modelDir),
      trained = loadPretrained(out);
    const cfg = SFTConfig.resolve({ output_dir: out });
    const held = await loadSFTData(reversalTask(64, 13), tok, cfg);
    const collate = (ex: SequenceExample[]) => collateSequences(ex, { padId: padTokenId(tok) });
    const e0 = evaluateSequences(base, held, collate, 32).eval_loss!;
    const e1 = evaluateSequences(trained, held, collate, 32).eval_loss!;
    assert.ok(e1 < e0 - 1, `saved model: held-out NLL ${e0} → ${e1}`);
    assert.ok(Math.abs(res.eval!.eval_loss! - evaluateSequences(trained, await loadSFTData(evalFile, tok, cfg), collate, 8).eval_loss!) < 1e-6);
    const last = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>)
      .pop()!;
    assert.equal(last.step, 60);
    assert.ok('eval_loss' in last && 'eval_mean_token_accuracy' in last);
  } finally {
    cleanup();
  }
});

test('SFT config: TRL defaults, strict keys and types', async () => {
  const c = SFTConfig.resolve({});
  assert.equal(c.learning_rate, 2e-5);
  assert.equal(c.max_length, 1024);
  assert.equal(c.packing, false);
  assert.equal(c.completion_only_loss, null);
  assert.equal(c.dataset_text_field, 'text');
  assert.equal(SFTConfig.resolve({ max_length: null }).max_length, null);
  assert.equal(SFTConfig.resolve({ completion_only_loss: 'false' }).completion_only_loss, false);
  assert.throws(() => SFTConfig.resolve({ max_lenght: 5 }, { source: 'x.yaml' }), /^OptionError: x\.yaml: max_lenght: unknown option \(did you mean max_length\?\)$/);
  assert.throws(() => SFTConfig.resolve({ packing: 'yes' }), /SFTConfig: packing: must be true or false, got "yes"/);
  assert.throws(() => SFTConfig.resolve({ max_length: 2.5 }), /SFTConfig: max_length: must be an integer >= 1 \(or null\), got 2.5/);
  assert.throws(() => SFTConfig.resolve({ fp16: true }), /fp16: TRL's fp16 is not implemented by alignkit/);
  assert.throws(() => SFTConfig.resolve({ packing: true, max_length: null }), /packing needs max_length/);
  assert.throws(
    () => SFTConfig.resolve({ lr_scheduler_type: 'cosine_with_restarts' }),
    /SFTConfig: lr_scheduler_type: must be one of linear, cosine, constant, constant_with_warmup, got "cosine_with_restarts"/,
  );
  await assert.rejects(() => runTraining('sft', { train_file: 'x.jsonl' }), /model_name_or_path is required/);
  await assert.rejects(() => runTraining('sft', { model_name_or_path: 'm', train_file: 'nowhere.jsonl' }), /sft: train_file nowhere\.jsonl: no such file or folder/);
});
