// The rules of a training run around the loop: output_dir is never reused by accident (a non-empty folder is
// refused unless overwrite_output_dir or a resume; resume_from_checkpoint true with no checkpoint is an error; the
// model folder is never the output), save_total_limit and a checkpoint at the end, Ctrl-C stops cleanly naming
// the latest checkpoint, a tokenizer that does not fit the model is refused before anything is written, a saved
// LoRA adapter works from any folder, and generation stops at every EOS the checkpoint knows of and fits its context.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/engine/native.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { stopIds, runGenerate } from '../../src/cli/generate.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { runTraining } from '../../src/train/run.js';
import { reversalTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const tok = wordTokenizer();
const MAIN = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const quiet = { quiet: true };

function setup(dir: string) {
  const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 7), tok);
  const train = writeJsonl(join(dir, 'train.jsonl'), reversalTask(64, 11));
  return { base, train, common: { model_name_or_path: base, train_file: train, per_device_train_batch_size: 8, logging_steps: 1, disable_tqdm: true, learning_rate: 1e-3 } };
}

test('output_dir: a non-empty folder is refused unless overwrite_output_dir (which clears the old run) or a resume', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { base, common } = setup(dir);
    const out = join(dir, 'out');
    await runTraining('sft', { ...common, output_dir: out, max_steps: 4, save_steps: 2 }, quiet);
    await assert.rejects(
      runTraining('sft', { ...common, output_dir: out, max_steps: 3 }, quiet),
      /sft: output_dir \S*out is not empty \(.*\); set overwrite_output_dir to replace that run, resume_from_checkpoint to continue it, or choose another folder/,
    );
    // overwrite: the old run's metrics and checkpoints go; the new log starts at step 1
    writeFileSync(join(out, 'notes.txt'), 'mine');
    await runTraining('sft', { ...common, output_dir: out, max_steps: 3, save_steps: 0, overwrite_output_dir: true }, quiet);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps, [1, 2, 3]);
    assert.deepEqual(
      readdirSync(out).filter((n) => n.startsWith('checkpoint')),
      [],
      'stale checkpoints removed',
    );
    assert.ok(existsSync(join(out, 'notes.txt')), 'files that are not run artifacts are left alone');
    // resume_from_checkpoint true with no checkpoint is an error (as in transformers)
    await assert.rejects(
      runTraining('sft', { ...common, output_dir: out, max_steps: 3, resume_from_checkpoint: true }, quiet),
      /resume_from_checkpoint is true but \S*out has no checkpoint to resume from/,
    );
    // the model folder is never the output
    await assert.rejects(runTraining('sft', { ...common, output_dir: base, max_steps: 1, overwrite_output_dir: true }, quiet), /sft: output_dir \S*base is the model folder/);
    await assert.rejects(runTraining('sft', { ...common, output_dir: common.train_file, max_steps: 1 }, quiet), /is a data file|is a file, not a folder/);
  } finally {
    cleanup();
  }
});

test('save_total_limit keeps the newest checkpoints, and the last step is always checkpointed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { common } = setup(dir);
    const out = join(dir, 'out');
    await runTraining('sft', { ...common, output_dir: out, max_steps: 30, save_steps: 7, save_total_limit: 2 }, quiet);
    assert.deepEqual(
      readdirSync(out)
        .filter((n) => n.startsWith('checkpoint'))
        .sort(),
      ['checkpoint-28', 'checkpoint-30'],
    );
    // resuming a finished run changes nothing and logs nothing twice
    await runTraining('sft', { ...common, output_dir: out, max_steps: 30, save_steps: 7, save_total_limit: 2, resume_from_checkpoint: true }, quiet);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(
      steps,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
  } finally {
    cleanup();
  }
});

test('Ctrl-C stops after the current step and names the latest checkpoint; the run resumes from it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { base, train } = setup(dir);
    const out = join(dir, 'out');
    const args = [
      'sft',
      '--model_name_or_path',
      base,
      '--train_file',
      train,
      '--output_dir',
      out,
      '--max_steps',
      '100000',
      '--save_steps',
      '3',
      '--per_device_train_batch_size',
      '8',
      '--disable_tqdm',
    ];
    const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t0 = Date.now();
    while (!existsSync(join(out, 'checkpoint-3', 'trainer_state.json'))) {
      if (Date.now() - t0 > 30000) assert.fail('no checkpoint after 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    proc.kill('SIGINT');
    const code = await new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /^sft \d+\/100000 \(\d+ s, ETA (\d+ s|\?)\)/m, 'progress lines show an ETA');
    const m = /interrupted at step (\d+) of 100000\. The latest checkpoint is (\S+) \(step (\d+)\); continue with --resume_from_checkpoint true\./.exec(stderr);
    assert.ok(m, stderr);
    assert.equal(Number(m[3]) % 3, 0);
    assert.ok(existsSync(join(m[2]!, 'trainer_state.json')));
  } finally {
    cleanup();
  }
});

test('a tokenizer that does not fit the model is refused before training, naming both files and sizes', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { base, common } = setup(dir);
    const tokDir = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures', 'tok-bytelevel');
    const out = join(dir, 'out');
    await assert.rejects(
      runTraining('sft', { ...common, tokenizer_name_or_path: tokDir, output_dir: out, max_steps: 1 }, quiet),
      new RegExp(
        `sft: the tokenizer does not fit the model: \\S*tok-bytelevel/tokenizer\\.json has 2000 tokens \\(ids up to 1999\\) but ${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/config\\.json has vocab_size ${tok.vocabSize}`,
      ),
    );
    assert.ok(!existsSync(out), 'nothing is written');
  } finally {
    cleanup();
  }
});

test('a LoRA adapter saved by a run works from any folder (its base is stored as an absolute path)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    setup(dir);
    // run from inside the folder with relative paths, as a user would
    execFileSync(
      process.execPath,
      [MAIN, 'sft', '--model_name_or_path', 'base', '--train_file', 'train.jsonl', '--output_dir', 'adapter', '--use_peft', '--lora_r', '2', '--max_steps', '2', '--disable_tqdm'],
      { cwd: dir, stdio: 'pipe' },
    );
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string };
    assert.equal(cfg.base_model_name_or_path, join(dir, 'base'));
    const text = execFileSync(process.execPath, [MAIN, 'generate', '--model', join(dir, 'adapter'), '--prompt', 'a b c =', '--max-new-tokens', '3', '--temperature', '0'], {
      cwd: packageRoot(),
      encoding: 'utf8',
    });
    assert.ok(text.startsWith('a b c ='), text);
  } finally {
    cleanup();
  }
});

test('generate stops at the tokenizer’s EOS and the checkpoint’s, and clips the length to the context', () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = tinyGpt2(tok.vocabSize, 3, { positions: 16 });
    const hfConfig = { ...p.hfConfig, model: { ...p.hfConfig.model, eosTokenId: 5 } };
    const warnings: string[] = [];
    const ids = stopIds({ ...p, hfConfig }, tok, (s) => warnings.push(s));
    assert.deepEqual(ids.sort(), [0, 5]);
    assert.match(warnings[0]!, /the tokenizer's EOS \(0\) differs from the checkpoint's \(5\); stopping on all of them/);
    // the tokenizer's EOS (what training appends) ends a row even when config.json names another id
    const modelDir = writeModelDir(join(dir, 'm'), { ...p, hfConfig }, tok);
    const again = loadPretrained(modelDir);
    assert.deepEqual(stopIds(again, Tokenizer.fromPretrained(modelDir), () => {}).sort(), [0, 5]);
    const out: string[] = [];
    const w: string[] = [];
    const r = runGenerate(
      { model: modelDir, prompt: ['a b c ='], max_new_tokens: 64, temperature: 0, top_k: null, top_p: null, seed: 0, chat: false, stop: [] },
      (s) => out.push(s),
      (s) => w.push(s),
    );
    assert.match(w.join('\n'), /--max-new-tokens 64 is more than the context leaves after the prompt \(4 of 16 positions\); generating at most 12/);
    assert.ok(r.text[0]!.split(' ').filter(Boolean).length <= 12);
  } finally {
    cleanup();
  }
});
