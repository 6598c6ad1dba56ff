// RLOO and GRPO on tiny random GPT-2 models: each raises a scorer's mean reward over fresh rollouts while the
// logged KL to the reference stays bounded; group layout, EOS masking and truncation masking; exact resume;
// config checks; runRLOO / runGRPO end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/engine/native.js';
import { parseConfig } from '../../src/io/config.js';
import { loadPretrained, savePretrained } from '../../src/io/pretrained.js';
import { gpt2Config } from '../../src/models/config.js';
import { generate } from '../../src/models/generate.js';
import { Transformer } from '../../src/models/transformer.js';
import { GRPOConfig, GRPOTrainer } from '../../src/train/grpo.js';
import { RLOOConfig, RLOOTrainer } from '../../src/train/rloo.js';
import { runTraining } from '../../src/train/run.js';
import type { PromptItem } from '../../src/train/rl/online-trainer.js';
import type { ScoreFunction } from '../../src/train/rl/scorer.js';

const V = 50,
  EOS = 0;
const TARGET = new Set([3, 7, 11, 19, 23]);
const targetFraction: ScoreFunction = (_p, _r, info) => info.responseIds.map((r) => r.filter((t) => TARGET.has(t)).length / r.length);
const tiny = (seed: number): Transformer => Transformer.random(gpt2Config({ vocabSize: V, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 64 }), seed);
const prompts: PromptItem[] = Array.from({ length: 32 }, (_, i) => ({ ids: [1 + (i % 40), 2 + ((i * 7) % 40)].slice(0, 1 + (i % 2)), text: `prompt ${i}` }));
const tmp = (): string => mkdtempSync(join(tmpdir(), 'alignkit-rl-'));
const base = { seed: 1, save_steps: 0, disable_tqdm: true, lr_scheduler_type: 'constant', logging_steps: 1 } as const;

function freshScore(model: Transformer, seed: number): number {
  const ps = prompts.flatMap((p) => [p.ids, p.ids, p.ids, p.ids]);
  const g = generate(model, ps, { maxNewTokens: 6, temperature: 1, seed });
  const s = targetFraction([], [], { promptIds: ps.map((p) => [...p]), responseIds: g.tokens, finishReason: g.finishReason }) as number[];
  return s.reduce((a, b) => a + b, 0) / s.length;
}

test('RLOO raises the mean score of fresh rollouts (async scorer) while the KL to the reference stays bounded', async () => {
  const policy = tiny(1),
    dir = tmp();
  try {
    const before = freshScore(policy, 321);
    let calls = 0;
    const asyncScorer: ScoreFunction = async (p, r, info) => {
      calls++;
      assert.equal(p.length, 16);
      assert.equal(p[0], p[3], 'the k = 4 completions of a prompt sit next to each other');
      assert.notEqual(p[0], p[4]);
      await new Promise((res) => setImmediate(res));
      return targetFraction(p, r, info);
    };
    const tr = new RLOOTrainer({
      args: { ...base, output_dir: dir, learning_rate: 3e-3, per_device_train_batch_size: 8, gradient_accumulation_steps: 2, num_generations: 4, max_completion_length: 6, beta: 0.05, max_steps: 40 },
      model: policy,
      rewardFuncs: asyncScorer,
      trainDataset: prompts,
    });
    const last = (await tr.train({ quiet: true })).metrics;
    const after = freshScore(policy, 321);
    const kls = tr.history.map((m) => m.kl!);
    console.log(`RLOO: fresh-rollout score ${before.toFixed(3)} -> ${after.toFixed(3)}; kl/token first ${kls[0]} max ${Math.max(...kls).toFixed(3)}`);
    assert.equal(calls, 40);
    assert.ok(after > before + 0.3, `score ${before} -> ${after}`);
    assert.equal(kls[0], 0, 'the first rollout comes from the reference itself');
    assert.ok(Math.max(...kls) < 2, `per-token KL stays bounded (max ${Math.max(...kls)}; log 50 = 3.9 would be a collapsed policy)`);
    assert.ok(kls.at(-1)! > 0.05);
    for (const k of ['reward', 'reward_std', 'kl', 'entropy', 'clip_ratio/region_mean', 'completions/mean_length', 'loss', 'grad_norm', 'lr', 'episode'])
      assert.ok(Number.isFinite(last[k]), `metric ${k} = ${last[k]}`);
    assert.equal(last.episode, 40 * 16);
    assert.equal(last['completions/mean_length'], 6);
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GRPO raises the mean score of fresh rollouts while the k3 KL to the reference stays bounded', async () => {
  const policy = tiny(1),
    dir = tmp();
  try {
    const before = freshScore(policy, 321);
    const tr = new GRPOTrainer({
      args: { ...base, output_dir: dir, learning_rate: 3e-3, per_device_train_batch_size: 8, gradient_accumulation_steps: 2, num_generations: 4, max_completion_length: 6, beta: 0.04, max_steps: 40 },
      model: policy,
      rewardFuncs: targetFraction,
      trainDataset: prompts,
    });
    const last = (await tr.train({ quiet: true })).metrics;
    const after = freshScore(policy, 321);
    const kls = tr.history.map((m) => m.kl!);
    console.log(`GRPO: fresh-rollout score ${before.toFixed(3)} -> ${after.toFixed(3)}; kl/token first ${kls[0]} max ${Math.max(...kls).toFixed(3)}`);
    assert.ok(after > before + 0.3, `score ${before} -> ${after}`);
    assert.equal(kls[0], 0);
    assert.ok(Math.max(...kls) < 2, `per-token KL stays bounded (max ${Math.max(...kls)})`);
    assert.ok(kls.at(-1)! > 0.05);
    assert.equal(last['clip_ratio/region_mean'], 0, 'one step per rollout: the ratio is exactly 1, nothing is clipped');
    for (const k of ['reward', 'reward_std', 'frac_reward_zero_std', 'kl', 'entropy', 'loss', 'grad_norm']) assert.ok(Number.isFinite(last[k]), k);
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GRPO with num_iterations 2 and EOS: later steps are off-policy (ratios move, some clipped); truncated completions can be masked', async () => {
  const policy = tiny(2),
    dir = tmp();
  try {
    policy.p('transformer.ln_f.bias').data[0] = 1;
    policy.embedWeight.data[EOS * 32] = 1.5; // EOS likely: some completions stop early
    const seen: number[][] = [];
    const scorer: ScoreFunction = (p, r, info) => {
      info.responseIds.forEach((x) => seen.push(x));
      return targetFraction(p, r, info);
    };
    const tr = new GRPOTrainer({
      args: {
        ...base,
        output_dir: dir,
        learning_rate: 1e-2,
        per_device_train_batch_size: 8,
        num_generations: 4,
        max_completion_length: 8,
        num_iterations: 2,
        epsilon: 0.05,
        mask_truncated_completions: true,
        loss_type: 'grpo',
        max_steps: 4,
      },
      model: policy,
      rewardFuncs: scorer,
      trainDataset: prompts,
      eosTokenId: EOS,
    });
    const last = (await tr.train({ quiet: true })).metrics;
    assert.ok(seen.some((r) => r.at(-1) === EOS && r.length < 8) && seen.some((r) => r.length === 8 && !r.includes(EOS)), 'both stopped and truncated completions occur');
    for (const r of seen) {
      const at = r.indexOf(EOS);
      assert.ok(at < 0 || at === r.length - 1, 'nothing after EOS');
    }
    assert.ok(
      tr.history.some((m) => m['clip_ratio/region_mean']! > 0),
      'the second step of a rollout clips some ratios',
    );
    const first = tr.history[0]!['completions/clipped_ratio']!;
    assert.ok(first > 0 && first < 1, `some completions of the first rollout hit the length limit (${first})`);
    assert.ok(last['completions/mean_length']! < 8);
    tr.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mask_truncated_completions: when every completion is truncated nothing is learnt (weights unchanged bitwise)', async () => {
  for (const masked of [true, false]) {
    const policy = tiny(3),
      dir = tmp();
    const before = policy.params.get('transformer.h.1.mlp.c_fc.weight')!.toArray();
    try {
      // no EOS id: every completion runs to max_completion_length
      const tr = new GRPOTrainer({
        args: { ...base, output_dir: dir, learning_rate: 1e-2, per_device_train_batch_size: 8, num_generations: 4, max_completion_length: 4, mask_truncated_completions: masked, max_steps: 2 },
        model: policy,
        rewardFuncs: targetFraction,
        trainDataset: prompts,
      });
      const last = (await tr.train({ quiet: true })).metrics;
      assert.equal(last['completions/clipped_ratio'], 1);
      const after = policy.params.get('transformer.h.1.mlp.c_fc.weight')!.toArray();
      if (masked) assert.deepEqual(after, before);
      else assert.notDeepEqual(after, before);
      tr.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

for (const algo of ['rloo', 'grpo'] as const) {
  test(`${algo}: a run resumed from checkpoint-2 ends bitwise equal to an uninterrupted 5-update run`, async () => {
    const dirA = tmp(),
      dirB = tmp();
    const cfg = {
      ...base,
      learning_rate: 3e-3,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      num_generations: 2,
      max_completion_length: 5,
      beta: 0.1,
      num_iterations: 2,
      max_steps: 5,
      save_steps: 2,
      lr_scheduler_type: 'cosine',
      warmup_steps: 1,
    } as const;
    const make = (dir: string, resume: string | false): RLOOTrainer | GRPOTrainer => {
      const inputs = { args: { ...cfg, output_dir: dir, resume_from_checkpoint: resume }, model: tiny(7), rewardFuncs: targetFraction, trainDataset: prompts };
      return algo === 'rloo' ? new RLOOTrainer(inputs) : new GRPOTrainer(inputs);
    };
    try {
      const a = make(dirA, false);
      await a.train({ quiet: true });
      const b = make(dirB, join(dirA, 'checkpoint-2'));
      await b.train({ quiet: true });
      assert.deepEqual(
        b.history.map((m) => m.step),
        [3, 4, 5],
      );
      for (const [n, t] of a.policy.params) assert.deepEqual(b.policy.params.get(n)!.toArray(), t.toArray(), n);
      assert.deepEqual(b.optimizer!.getState(), a.optimizer!.getState());
      assert.deepEqual(b.rng.getState(), a.rng.getState());
      assert.notDeepEqual(tiny(7).params.get('transformer.wte.weight')!.toArray(), a.policy.params.get('transformer.wte.weight')!.toArray(), 'training changed the weights');
      a.dispose();
      b.dispose();
    } finally {
      rmSync(dirA, { recursive: true, force: true });
      rmSync(dirB, { recursive: true, force: true });
    }
  });
}

test('config: TRL defaults and checks', async () => {
  const r = RLOOConfig.resolve({});
  assert.deepEqual([r.num_generations, r.beta, r.epsilon, r.num_iterations, r.temperature, r.learning_rate, r.normalize_advantages], [2, 0.05, 0.2, 1, 1, 1e-6, false]);
  const g = GRPOConfig.resolve({});
  assert.deepEqual([g.num_generations, g.beta, g.scale_rewards, g.loss_type, g.max_completion_length, g.learning_rate], [8, 0, 'group', 'dapo', 512, 1e-6]);
  assert.equal(GRPOConfig.resolve({ scale_rewards: false }).scale_rewards, 'none');
  assert.throws(() => GRPOConfig.resolve({ per_device_train_batch_size: 6, num_generations: 4 }), /multiple of num_generations/);
  assert.throws(() => GRPOConfig.resolve({ loss_type: 'ppo' }), /GRPOConfig: loss_type: must be one of grpo, bnpo, dr_grpo, dapo, got "ppo"/);
  assert.throws(() => RLOOConfig.resolve({ num_generations: 1 }), /RLOOConfig: num_generations: must be an integer >= 2, got 1/);
  assert.throws(() => RLOOConfig.resolve({ betta: 0.1 }), /RLOOConfig: betta: unknown option \(did you mean beta\?\)/);
  assert.throws(() => GRPOConfig.resolve({ learning_rate: -1e-3 }), /GRPOConfig: learning_rate: must be a number >= 0/);
  const few = new GRPOTrainer({ args: { per_device_train_batch_size: 8, num_generations: 4 }, model: tiny(1), rewardFuncs: targetFraction, trainDataset: prompts.slice(0, 1) });
  await assert.rejects(few.train({ quiet: true }), /grpo: an update draws 2 prompts but the dataset has 1/);
  few.dispose();
});

test('runRLOO and runGRPO: model directory + tokenizer + JSONL prompts + a scorer function', async () => {
  const dir = tmp();
  try {
    const tokDir = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures', 'tok-bytelevel');
    const hfConfig = parseConfig({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 2, n_positions: 64, vocab_size: 2000, eos_token_id: 0 });
    const modelDir = join(dir, 'model');
    savePretrained(modelDir, { model: Transformer.random(hfConfig.model, 3), hfConfig, generation: null, score: null });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(join(tokDir, f), join(modelDir, f));
    const data = join(dir, 'prompts.jsonl');
    writeFileSync(data, ['the cat', 'a dog', 'hello there', 'once upon'].map((p) => JSON.stringify({ prompt: [{ role: 'user', content: p }] })).join('\n') + '\n');
    const texts: string[] = [];
    const scorer: ScoreFunction = (p, r) => {
      texts.push(...p);
      return r.map((x) => x.length % 3);
    };
    const common = {
      model_name_or_path: modelDir,
      train_file: data,
      reward_funcs: scorer,
      per_device_train_batch_size: 4,
      num_generations: 2,
      max_completion_length: 4,
      max_steps: 2,
      disable_tqdm: true,
      logging_steps: 1,
      learning_rate: 1e-3,
    };
    const logged: Record<string, number>[] = [];
    const r = (await runTraining('rloo', { ...common, output_dir: join(dir, 'rloo'), ref_model_name_or_path: modelDir }, { quiet: true, onLog: (m: Record<string, number>) => logged.push(m) }))
      .metrics;
    assert.equal(logged[0]!.kl, 0, 'the separate reference starts equal to the policy');
    assert.ok(logged[1]!.kl !== 0);
    const g = (await runTraining('grpo', { ...common, output_dir: join(dir, 'grpo'), beta: 0.1, use_peft: true, lora_r: 2 }, { quiet: true })).metrics;
    assert.equal(r.step, 2);
    assert.equal(g.step, 2);
    assert.ok(Number.isFinite(r.reward) && Number.isFinite(g.kl));
    assert.ok(texts[0]!.includes('the cat') || texts.some((t) => t.includes('hello there')), 'the scorer sees the prompts as rendered text');
    loadPretrained(join(dir, 'rloo')).model.dispose();
    assert.ok(JSON.parse((await import('node:fs')).readFileSync(join(dir, 'grpo', 'adapter_config.json'), 'utf8')).peft_type === 'LORA');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
