// bf16 mixed precision in the trainers (`bf16: true`): a 300-step DPO run in bf16 tracks the fp32 run's loss
// curve and ends at the same held-out reward accuracy (within 0.02); a bf16 run resumed from a checkpoint ends
// bitwise equal to an uninterrupted bf16 run; SFT in bf16 learns as fp32 does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bf16Supported } from '../../src/engine/autocast.js';
import { runTraining } from '../../src/train/run.js';
import { preferenceTask, reversalTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const tok = wordTokenizer();

test('bf16 DPO tracks fp32 over 300 steps and reaches the same held-out accuracy', async () => {
  const { dir, cleanup } = tempDir();
  try {
    console.log(`bf16 kernels on this CPU: ${bf16Supported()}`);
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 4, { hidden: 64 }), tok);
    const train = writeJsonl(join(dir, 'train.jsonl'), preferenceTask(512, 1, 5));
    const held = writeJsonl(join(dir, 'held.jsonl'), preferenceTask(128, 2, 5));
    const run = (bf16: boolean) =>
      runTraining(
        'dpo',
        {
          model_name_or_path: base,
          train_file: train,
          eval_file: held,
          output_dir: join(dir, bf16 ? 'bf16' : 'fp32'),
          bf16,
          learning_rate: 5e-4,
          lr_scheduler_type: 'constant',
          max_steps: 300,
          per_device_train_batch_size: 16,
          logging_steps: 10,
          save_steps: 0,
          seed: 3,
        },
        { quiet: true },
      );
    const a = await run(false),
      b = await run(true);
    const curve = (d: string) =>
      readFileSync(join(dir, d, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number>)
        .filter((r) => 'loss' in r)
        .map((r) => r.loss!);
    const fa = curve('fp32'),
      fb = curve('bf16');
    assert.equal(fa.length, 30);
    let maxDiff = 0;
    for (let i = 0; i < fa.length; i++) maxDiff = Math.max(maxDiff, Math.abs(fa[i]! - fb[i]!));
    const accA = a.eval!['eval_rewards/accuracies']!,
      accB = b.eval!['eval_rewards/accuracies']!;
    console.log(
      `DPO 300 steps: loss fp32 ${fa[0]!.toFixed(3)} → ${fa.at(-1)!.toFixed(3)}, bf16 ${fb[0]!.toFixed(3)} → ${fb.at(-1)!.toFixed(3)}; max |Δ| of the logged (10-step mean) losses ${maxDiff.toExponential(2)}; held-out accuracy fp32 ${accA.toFixed(3)} bf16 ${accB.toFixed(3)}`,
    );
    assert.ok(fa.at(-1)! < fa[0]! - 0.3, 'the run learns');
    assert.ok(maxDiff < 0.05, `the bf16 loss curve stays within 0.05 of fp32's (max ${maxDiff})`);
    assert.ok(Math.abs(accA - accB) <= 0.02, `held-out accuracy ${accA} vs ${accB}`);
  } finally {
    cleanup();
  }
});

test('a bf16 run resumed from its checkpoint ends bitwise equal to an uninterrupted bf16 run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 5, { hidden: 64 }), tok);
    const train = writeJsonl(join(dir, 'train.jsonl'), reversalTask(96, 9));
    const cfg = (out: string, extra: Record<string, unknown> = {}) => ({
      model_name_or_path: base,
      train_file: train,
      output_dir: join(dir, out),
      bf16: true,
      learning_rate: 3e-3,
      max_steps: 12,
      per_device_train_batch_size: 8,
      logging_steps: 1,
      save_steps: 6,
      seed: 2,
      ...extra,
    });
    await runTraining('sft', cfg('whole'), { quiet: true });
    let stopped = false;
    await assert.rejects(
      runTraining('sft', cfg('part'), {
        quiet: true,
        onLog: (m) => {
          if (m.step === 7) {
            stopped = true;
            throw new Error('stop');
          }
        },
      }),
      /stop/,
    );
    assert.ok(stopped);
    await runTraining('sft', cfg('part', { resume_from_checkpoint: true }), { quiet: true });
    assert.ok(readFileSync(join(dir, 'whole', 'model.safetensors')).equals(readFileSync(join(dir, 'part', 'model.safetensors'))), 'final weights bitwise equal');
  } finally {
    cleanup();
  }
});
