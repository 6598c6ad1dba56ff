// TRL's dataset options on local files: dataset_name as a file or a folder of split files, the `datasets:` mixture
// list (path: json with data_files, or folders, by split), what alignkit refuses by name, and one YAML file that is
// valid for both `alignkit dpo --config` and `trl dpo --config` running end to end on a tiny model.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { DATA_FIELDS, dataSources } from '../../src/train/data-args.js';
import { resolveOptions } from '../../src/options/fields.js';
import { cli } from '../helpers/cli.js';
import { preferenceTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const data = (given: Record<string, unknown>) => dataSources(resolveOptions(DATA_FIELDS, given, 'cfg'), 'dpo');

test('dataset_name: a file, or a folder whose split files are named by dataset_train_split / dataset_test_split', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeJsonl(join(dir, 'all.jsonl'), [{ text: 'a' }]);
    assert.equal(data({ dataset_name: join(dir, 'all.jsonl') }).train, join(dir, 'all.jsonl'));
    const ds = join(dir, 'ds');
    mkdirSync(join(ds, 'data'), { recursive: true });
    writeJsonl(join(ds, 'data', 'train-00000-of-00002.jsonl'), [{ text: 'a' }]);
    writeJsonl(join(ds, 'data', 'train-00001-of-00002.jsonl'), [{ text: 'b' }]);
    writeJsonl(join(ds, 'data', 'test-00000-of-00001.jsonl'), [{ text: 'c' }]);
    const s = data({ dataset_name: ds });
    assert.deepEqual(s.train, { files: [join(ds, 'data', 'train-00000-of-00002.jsonl'), join(ds, 'data', 'train-00001-of-00002.jsonl')] });
    assert.equal(s.eval, join(ds, 'data', 'test-00000-of-00001.jsonl'));
    assert.throws(() => data({ dataset_name: ds, dataset_train_split: 'dev' }), /dpo: dataset_name \S+ has no dev\.jsonl or dev\.json/);
    assert.throws(() => data({ dataset_name: join(dir, 'nope') }), /dpo: dataset_name \S+nope: no such file or folder/);
    assert.throws(() => data({ dataset_name: ds, train_file: join(dir, 'all.jsonl') }), /give the training data one way: train_file and dataset_name are both set/);
  } finally {
    cleanup();
  }
});

test('datasets: a mixture of local files by split; hub-only options are refused by name', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = writeJsonl(join(dir, 'a.jsonl'), [{ text: 'a' }]),
      b = writeJsonl(join(dir, 'b.jsonl'), [{ text: 'b' }]),
      e = writeJsonl(join(dir, 'e.jsonl'), [{ text: 'e' }]);
    mkdirSync(join(dir, 'folder'));
    writeJsonl(join(dir, 'folder', 'train.jsonl'), [{ text: 'f' }]);
    const s = data({ datasets: [{ path: 'json', data_files: [a, b], split: 'train' }, { path: join(dir, 'folder') }, { path: 'json', data_files: { test: e }, split: 'test' }] });
    assert.deepEqual(s.train, { files: [a, b, join(dir, 'folder', 'train.jsonl')] });
    assert.equal(s.eval, e);
    assert.throws(() => data({ datasets: [{ path: 'json', data_files: a, split: 'train', name: 'default' }] }), /cfg: datasets: entry 0: name \(a hub dataset configuration\) is not supported/);
    assert.throws(() => data({ datasets: [{ path: 'json', data_files: a, columns: ['text'] }] }), /entry 0: columns is not supported/);
    assert.throws(
      () => data({ datasets: [{ path: 'json', data_files: a, split: 'validation' }] }),
      /entry 0: split 'validation' is neither dataset_train_split \('train'\) nor dataset_test_split \('test'\)/,
    );
    assert.throws(() => resolveOptions(DATA_FIELDS, { dataset_config: 'x' }, 'cfg', { refused: { dataset_config: 'hub only' } }), /cfg: dataset_config: hub only/);
  } finally {
    cleanup();
  }
});

test('one YAML valid for both alignkit dpo and trl dpo (TRL names only, local data) runs end to end', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const tok = wordTokenizer();
    const model = writeModelDir(join(dir, 'model'), tinyGpt2(tok.vocabSize, 3), tok);
    writeJsonl(join(dir, 'prefs_train.jsonl'), preferenceTask(64, 1));
    writeJsonl(join(dir, 'prefs_test.jsonl'), preferenceTask(16, 2));
    const yaml = join(dir, 'dpo.yaml');
    // every key below is a TRL ScriptArguments / ModelConfig / DPOConfig option
    writeFileSync(
      yaml,
      [
        `model_name_or_path: ${model}`,
        'datasets:',
        '  - path: json',
        `    data_files: ${join(dir, 'prefs_train.jsonl')}`,
        '    split: train',
        '  - path: json',
        `    data_files: ${join(dir, 'prefs_test.jsonl')}`,
        '    split: test',
        'dataset_train_split: train',
        'dataset_test_split: test',
        `output_dir: ${join(dir, 'out')}`,
        'learning_rate: 1.0e-3',
        'beta: 0.1',
        'loss_type: sigmoid',
        'per_device_train_batch_size: 8',
        'max_steps: 6',
        'logging_steps: 3',
        'eval_strategy: steps',
        'eval_steps: 6',
        'use_peft: true',
        'lora_r: 4',
        'lora_alpha: 8',
        '',
      ].join('\n'),
    );
    let out = '',
      err = '';
    const o = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
    const e = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) });
    assert.equal(await cli(['dpo', '--config', yaml, '--disable_tqdm'], o, e), 0, err);
    const r = JSON.parse(out) as { train: Record<string, number>; eval: Record<string, number> };
    assert.equal(r.train.step, 6);
    assert.ok(Number.isFinite(r.eval['eval_rewards/accuracies']));
  } finally {
    cleanup();
  }
});
