// Bad records stop a run with file:line:field, or with skip_invalid are counted, reported and left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTraining } from '../../src/train/run.js';
import { reversalTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

test('runSFT: an invalid record names its file, line and field; skip_invalid reports it and trains on the rest', async () => {
  const tok = wordTokenizer();
  const { dir, cleanup } = tempDir();
  try {
    const modelDir = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 7), tok);
    const trainFile = writeJsonl(join(dir, 'train.jsonl'), reversalTask(40, 11));
    appendFileSync(trainFile, '{"prompt": "a b", "completion": 7}\n{not json\n');
    const base = { model_name_or_path: modelDir, train_file: trainFile, output_dir: join(dir, 'out'), max_steps: 2, per_device_train_batch_size: 8, save_steps: 0 };
    await assert.rejects(() => runTraining('sft', base, { quiet: true }), /train\.jsonl:41: completion: /);
    const errs: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    let res;
    try {
      res = await runTraining('sft', { ...base, skip_invalid: true }, { quiet: true });
    } finally {
      process.stderr.write = write;
    }
    assert.equal(res.globalStep, 2);
    const report = errs.join('');
    assert.match(report, /40 of 42 records kept, 2 skipped/);
    assert.match(report, /:41/);
    assert.match(report, /:42/);
  } finally {
    cleanup();
  }
});
