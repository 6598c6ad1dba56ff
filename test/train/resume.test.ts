// Never lose work: a training process killed with SIGKILL mid-run resumes (in a new process) to final weights
// bitwise equal to an uninterrupted run's, ignoring a half-written checkpoint folder; a LoRA DPO run with
// precomputed reference log-probs resumes exactly too; a NaN/inf in the loss or the gradients stops the run with
// a diagnostic naming the step and the last good checkpoint, which is intact (same weights, resumable).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Batch, padTokenId } from '../../src/data/index.js';
import { add, scale, sqrt, sub, sum } from '../../src/engine/ops/elementwise.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { readJsonFile } from '../../src/io/json-file.js';
import { DPOTrainer, loadDPOData, DPOConfig } from '../../src/train/dpo.js';
import { listCheckpoints } from '../../src/train/checkpoint.js';
import { SFTConfig, SFTTrainer, type SFTTrainerInputs, loadSFTData } from '../../src/train/sft.js';
import type { LossResult } from '../../src/train/supervised.js';
import { preferenceTask, reversalTask, tempDir, tinyGpt2, wordTokenizer, writeJsonl, writeModelDir } from './helpers.js';

const tok = wordTokenizer();
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'resume-child.js');

interface Run {
  proc: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startRun(configFile: string, delayMs = 0): Run {
  const proc = spawn(process.execPath, [CHILD], {
    env: { ...process.env, ALIGNKIT_RESUME_CHILD: configFile, ALIGNKIT_STEP_DELAY_MS: String(delayMs) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => proc.on('exit', (code, signal) => res({ code, signal, stderr })));
  return { proc, done };
}

function lastLoggedStep(outputDir: string): number {
  const f = join(outputDir, 'metrics.jsonl');
  if (!existsSync(f)) return 0;
  const lines = readFileSync(f, 'utf8').trim().split('\n').filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return (JSON.parse(lines[i]!) as { step: number }).step;
    } catch {
      // a line being written
    }
  }
  return 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('kill -9 mid-run, resume in a new process: final weights bitwise equal to an uninterrupted run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 5), tok);
    const trainFile = writeJsonl(join(dir, 'train.jsonl'), reversalTask(100, 9));
    const config = (out: string, resume = false) => {
      const f = join(dir, `${out}-${resume}.json`);
      writeFileSync(
        f,
        JSON.stringify({
          model_name_or_path: base,
          train_file: trainFile,
          output_dir: join(dir, out),
          learning_rate: 3e-3,
          warmup_steps: 3,
          max_steps: 30,
          per_device_train_batch_size: 8,
          gradient_accumulation_steps: 2,
          logging_steps: 1,
          save_steps: 5,
          seed: 7,
          disable_tqdm: true,
          resume_from_checkpoint: resume,
        }),
      );
      return f;
    };
    // the uninterrupted run
    const whole = await startRun(config('whole')).done;
    assert.equal(whole.code, 0, whole.stderr);
    // the run that gets killed: wait for checkpoint-10 and two more steps, then SIGKILL
    const out = join(dir, 'killed');
    const victim = startRun(config('killed'), 40);
    const t0 = Date.now();
    while (!(existsSync(join(out, 'checkpoint-10', 'trainer_state.json')) && lastLoggedStep(out) >= 12)) {
      if (victim.proc.exitCode !== null) assert.fail('the training process ended before it could be killed');
      if (Date.now() - t0 > 30000) assert.fail('no checkpoint-10 after 30 s');
      await sleep(5);
    }
    victim.proc.kill('SIGKILL');
    const killed = await victim.done;
    assert.equal(killed.signal, 'SIGKILL');
    const stepAtKill = lastLoggedStep(out);
    assert.ok(stepAtKill >= 12 && stepAtKill < 30, `killed at step ${stepAtKill}`);
    assert.ok(!existsSync(join(out, 'model.safetensors')), 'the killed run never reached its final save');
    const newest = listCheckpoints(out).pop()!;
    assert.ok(newest.step >= 10 && newest.step <= stepAtKill);
    // a crash while writing the next checkpoint leaves a temporary folder: resume must ignore it
    const tmp = join(out, `checkpoint-${newest.step + 5}.tmp-999999`);
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'model.safetensors'), Buffer.alloc(100, 7));
    // resume in a new process
    const resumed = await startRun(config('killed', true)).done;
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resumed from ${newest.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} at step ${newest.step}`));
    assert.ok(!existsSync(tmp), 'the crash leftover is removed');
    // the resumed run's log reads like one run: every step once, none repeated after the resume point
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(
      steps,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const a = readFileSync(join(dir, 'whole', 'model.safetensors')),
      b = readFileSync(join(out, 'model.safetensors'));
    assert.ok(a.equals(b), 'final model.safetensors differ');
    // and the weights did train (the comparison is not between two untouched copies)
    assert.ok(!a.equals(readFileSync(join(base, 'model.safetensors'))));
  } finally {
    cleanup();
  }
});

test('LoRA DPO with precomputed reference log-probs resumes exactly (adapters and optimiser from the checkpoint)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = writeModelDir(join(dir, 'base'), tinyGpt2(tok.vocabSize, 6), tok);
    const cfg = (out: string, extra: Record<string, unknown> = {}) =>
      DPOConfig.resolve({
        output_dir: join(dir, out),
        learning_rate: 5e-3,
        max_steps: 12,
        per_device_train_batch_size: 8,
        logging_steps: 1,
        save_steps: 4,
        precompute_ref_log_probs: true,
        seed: 3,
        disable_tqdm: true,
        ...extra,
      });
    const data = await loadDPOData(preferenceTask(40, 4), tok, cfg('x'));
    const make = (args: ReturnType<typeof cfg>) => {
      const p = loadPretrained(base);
      // LoRA with dropout on: its masks come from the trainer's RNG, which the checkpoint restores; the reference
      // is the policy with its adapters off
      const t = new DPOTrainer({ args: { ...args, disable_dropout: false }, model: p, peftConfig: { r: 4, lora_alpha: 8, lora_dropout: 0.1 }, trainDataset: data, padTokenId: padTokenId(tok) });
      p.model.training = true;
      return { p, t };
    };
    const whole = make(cfg('whole'));
    await whole.t.train({ quiet: true });
    // a run that stops after step 8 (as if killed), then a fresh process-like restart from its newest checkpoint
    const part = make(cfg('part', { max_steps: 12 }));
    let stopAt = 0;
    try {
      await part.t.train({
        quiet: true,
        onLog: (m) => {
          if (m.step === 9) {
            stopAt = 9;
            throw new Error('stop');
          }
        },
      });
    } catch (e) {
      assert.equal((e as Error).message, 'stop');
    }
    assert.equal(stopAt, 9);
    assert.equal(listCheckpoints(join(dir, 'part')).pop()!.step, 8);
    const again = make(cfg('part', { resume_from_checkpoint: true }));
    await again.t.train({ quiet: true });
    assert.equal(again.t.globalStep, 12);
    for (const [name, ad] of whole.p.model.adapters) {
      const other = again.p.model.adapters.get(name)!;
      assert.deepEqual(other.A.toArray(), ad.A.toArray(), `${name} lora_A`);
      assert.deepEqual(other.B.toArray(), ad.B.toArray(), `${name} lora_B`);
    }
    assert.ok(whole.t.history.at(-1)!.loss! < whole.t.history[0]!.loss!, 'the run trains');
    const strip = ({ train_runtime: _t, ...rest }: Record<string, number>) => rest;
    assert.deepEqual(strip(again.t.history.at(-1)!), strip(whole.t.history.at(-1)!));
  } finally {
    cleanup();
  }
});

/** An SFT trainer whose loss (or one gradient) turns NaN at one step. */
class Poisoned extends SFTTrainer {
  constructor(
    o: SFTTrainerInputs,
    readonly at: number,
    readonly mode: 'loss' | 'grad',
  ) {
    super(o);
  }
  override computeLoss(b: Batch): LossResult {
    const r = super.computeLoss(b);
    if (this.globalStep + 1 !== this.at) return r;
    if (this.mode === 'loss') return { ...r, loss: scale(r.loss, NaN) };
    // + 0·Σ√(w − w): the value is unchanged, the gradient of w becomes 0·∞ = NaN
    const w = this.trainable[0]!;
    return { ...r, loss: add(r.loss, scale(sum(sqrt(sub(w, w))), 0)) };
  }
}

test('a NaN loss or gradient stops the run naming the step and the last good checkpoint, which is intact', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = (out: string, extra: Record<string, unknown> = {}) =>
      SFTConfig.resolve({ output_dir: join(dir, out), learning_rate: 3e-3, max_steps: 12, per_device_train_batch_size: 8, logging_steps: 1, save_steps: 5, seed: 1, disable_tqdm: true, ...extra });
    const train = await loadSFTData(reversalTask(64, 1), tok, args('x'));
    const opts = (a: ReturnType<typeof args>) => ({ args: a, model: tinyGpt2(tok.vocabSize, 2), trainDataset: train, padTokenId: padTokenId(tok) });
    const clean = new SFTTrainer(opts(args('clean')));
    await clean.train({ quiet: true });
    const cleanFinal = clean.model.model.params.get('transformer.wte.weight')!.toArray();

    for (const mode of ['loss', 'grad'] as const) {
      const out = join(dir, mode);
      const t = new Poisoned(opts(args(mode)), 7, mode);
      let atFive: Float32Array | null = null;
      const err = await (async () => {
        try {
          await t.train({ quiet: true, onLog: (m) => void (m.step === 5 && (atFive = t.model.model.params.get('transformer.wte.weight')!.toArray())) });
        } catch (e) {
          return e as Error;
        }
        return null;
      })();
      assert.ok(err, `${mode}: the run must stop`);
      assert.equal(err.name === 'Error' || err.constructor.name === 'TrainingDivergedError', true);
      const what = mode === 'loss' ? 'loss is NaN' : 'gradient norm is NaN';
      assert.match(err.message, new RegExp(`${what} at step 7`));
      assert.ok(err.message.includes(`Last good checkpoint: ${join(out, 'checkpoint-5')}`), err.message);
      // nothing was written after the bad step, and checkpoint-5 is whole: same weights as at step 5
      assert.deepEqual(
        readdirSync(out)
          .filter((n) => n.startsWith('checkpoint'))
          .sort(),
        ['checkpoint-5'],
      );
      assert.equal((readJsonFile(join(out, 'checkpoint-5', 'trainer_state.json'), 'state') as { global_step: number }).global_step, 5);
      const saved = loadPretrained(join(out, 'checkpoint-5'));
      assert.deepEqual(saved.model.params.get('transformer.wte.weight')!.toArray(), atFive);
      // ... and it resumes to the same final weights as a run that never saw a NaN
      const resumed = new SFTTrainer(opts(args(mode, { resume_from_checkpoint: true })));
      await resumed.train({ quiet: true });
      assert.deepEqual(resumed.model.model.params.get('transformer.wte.weight')!.toArray(), cleanFinal);
    }

    // resuming with other settings is refused, naming what differs
    const other = new SFTTrainer(opts(args('loss', { resume_from_checkpoint: true, learning_rate: 1, lr_scheduler_type: 'constant' })));
    await assert.rejects(
      other.train({ quiet: true }),
      /cannot resume from \S*checkpoint-12: its settings differ from this run's \(learning_rate: checkpoint 0\.003, now 1; lr_scheduler_type: checkpoint "linear", now "constant"\)/,
    );
  } finally {
    cleanup();
  }
});
