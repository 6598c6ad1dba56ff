// Constitutional AI on a tiny model trained in the test to follow the critique/revision and comparison formats:
// the supervised stage turns unkind first replies into kind revisions and records the principle it drew; seeded
// runs repeat; the AI-feedback stage prefers the kind reply in both orders; the position-bias correction cancels
// a known bias exactly; chain-of-thought answers are clamped; the soft labels train the reward model and DPO.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LabelRecord, labelPairs } from '../../src/cai/ai-labels.js';
import { samplePrinciple } from '../../src/cai/constitution.js';
import { type Transcript, revise } from '../../src/cai/revise.js';
import { constitutionalScorer } from '../../src/cai/scorer.js';
import { LocalTextModel } from '../../src/feedback/local-model.js';
import type { ChoiceRequest, Generation, GenerationRequest, TextModel } from '../../src/feedback/text-model.js';
import { readJournal } from '../../src/io/journal.js';
import { tempDir } from '../train/helpers.js';
import { THINGS, TOY, kind, request, trainToyModel, unkind } from './helpers.js';

let dir = '',
  cleanup = () => {};
let toy: LocalTextModel;
const prompts = THINGS.map((w) => ({ id: w, prompt: request(w) }));

before(async () => {
  ({ dir, cleanup } = tempDir('alignkit-cai-'));
  toy = LocalTextModel.load(await trainToyModel(dir));
});
after(() => {
  toy.dispose();
  cleanup();
});

const gen = { maxTokens: 16, temperature: 0.3 };

test('SL-CAI: revisions move the first replies in the trained direction; transcripts record the principle drawn; seeded runs repeat', async () => {
  const out = join(dir, 'rev-a');
  const r = await revise({ model: toy, constitution: TOY, prompts, outputDir: out, revisions: 1, seed: 5, generation: gen, batchSize: 5, quiet: true });
  assert.equal(r.done, THINGS.length);
  const ts = readJournal<Transcript>(r.transcripts);
  assert.deepEqual(ts.map((t) => t.id).sort(), [...THINGS].sort());
  let unkindFirst = 0,
    kindAfter = 0;
  for (const t of ts) {
    assert.equal(t.steps.length, 1);
    assert.equal(t.steps[0]!.principle, samplePrinciple(TOY, 5, t.id, 0).id, `${t.id}: the principle actually drawn is recorded`);
    if (t.response === unkind(t.id)) unkindFirst++;
    if (t.steps[0]!.revision === kind(t.id)) kindAfter++;
  }
  console.log(`SL-CAI toy: ${unkindFirst}/${ts.length} first replies unkind, ${kindAfter}/${ts.length} revisions kind`);
  assert.ok(unkindFirst >= 10 && kindAfter >= 10, `${unkindFirst} unkind first replies, ${kindAfter} kind revisions`);
  assert.ok(new Set(ts.map((t) => t.steps[0]!.principle)).size === 2, 'both principles are drawn over 12 prompts');
  // the SFT rows are request → final revision; the preference rows prefer the revision over the first reply
  const sft = readFileSync(r.sft, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; completion: string });
  assert.equal(sft.length, THINGS.length);
  assert.ok(sft.every((row) => row.prompt.startsWith('Human: describe the') && row.prompt.endsWith('\n\nAssistant:')));
  const prefs = readFileSync(r.prefs, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { chosen: string; rejected: string });
  assert.ok(prefs.length >= 10 && prefs.every((p) => p.chosen !== p.rejected));
  // the same seed again (other batch size): the same transcripts
  const again = await revise({ model: toy, constitution: TOY, prompts, outputDir: join(dir, 'rev-b'), revisions: 1, seed: 5, generation: gen, batchSize: 3, quiet: true });
  assert.deepEqual(
    readJournal<Transcript>(again.transcripts).sort((a, b) => a.id.localeCompare(b.id)),
    [...ts].sort((a, b) => a.id.localeCompare(b.id)),
  );
  // two rounds: the second critique is of the first revision
  const two = await revise({ model: toy, constitution: TOY, prompts: prompts.slice(0, 4), outputDir: join(dir, 'rev-c'), revisions: 2, seed: 5, generation: gen, quiet: true });
  assert.ok(readJournal<Transcript>(two.transcripts).every((t) => t.steps.length === 2));
});

test('RLAIF labels: the toy feedback model prefers the kind reply in both orders; soft labels and principle ids are written', async () => {
  const pairs = THINGS.map((w, i) => (i % 2 ? { id: w, prompt: request(w), response_a: kind(w), response_b: unkind(w) } : { id: w, prompt: request(w), response_a: unkind(w), response_b: kind(w) }));
  const out = join(dir, 'labels', 'ai_prefs.jsonl');
  const r = await labelPairs({ model: toy, constitution: TOY, pairs, out, seed: 1, ensemble: 2, quiet: true });
  const recs = readJournal<LabelRecord>(r.journal);
  let right = 0,
    consistent = 0;
  for (const rec of recs) {
    const kindIsA = rec.response_a.endsWith('lovely.');
    if (rec.p_a > 0.5 === kindIsA) right++;
    // swap consistency: the kind reply wins in the order (a, b) and in the order (b, a)
    if (rec.first.every((f, k) => f > 0.5 === kindIsA && rec.swapped[k]! > 0.5 === !kindIsA)) consistent++;
  }
  console.log(`RLAIF toy: agreement with the known preference ${right}/${recs.length}, swap-consistent ${consistent}/${recs.length}, position bias ${r.positionBias?.toFixed(3)}`);
  assert.ok(right >= 11, `agreement ${right}/12`);
  assert.ok(consistent >= 10, `swap-consistent ${consistent}/12`);
  const rows = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { chosen: string; rejected: string; soft_label: number; principle_ids: string[] });
  assert.equal(rows.length + r.dropped, 12);
  for (const row of rows) {
    assert.ok(row.soft_label > 0.5 && row.soft_label <= 1);
    assert.equal(row.principle_ids.length, 2);
  }
  assert.ok(rows.filter((x) => x.chosen.endsWith('lovely.')).length >= 11);
});

/** A feedback model with a known preference (the reply containing "good") and a known bias towards (A). */
class Scripted implements TextModel {
  readonly id = 'scripted';
  readonly chat = false;
  constructor(
    private readonly bias: number,
    private readonly reasoned = false,
  ) {}
  async generate(reqs: readonly GenerationRequest[]): Promise<Generation[]> {
    return reqs.map(() => ({ text: 'the first option is good', finishReason: 'stop' as const, tokens: 5 }));
  }
  async choiceLogprobs(reqs: readonly ChoiceRequest[]): Promise<number[][]> {
    return reqs.map((r) => {
      if (r.options.length === 5) return [0, 0.5, 1, 1.5, 2]; // a rating question: leans to 5
      const text = String(r.prompt);
      const a = /\(A\) ([^\n]*)/.exec(text)![1]!,
        b = /\(B\) ([^\n]*)/.exec(text)![1]!;
      const s = (x: string) => (x.includes('good') ? 1 : 0);
      // log-odds of A: the preference (±2) plus the bias towards the first position
      const logit = 2 * (s(a) - s(b)) + this.bias;
      return [logit, 0];
    });
  }
  dispose(): void {}
}

test('position bias: asking in both orders cancels a known bias; it is measured and reported; CoT answers are clamped', async () => {
  const pairs = [
    { id: '1', prompt: 'q', response_a: 'good reply', response_b: 'bad reply' },
    { id: '2', prompt: 'q', response_a: 'bad reply', response_b: 'good reply' },
    { id: '3', prompt: 'q', response_a: 'bad one', response_b: 'bad two' },
  ];
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const bias = 1.5;
  const swapped = await labelPairs({ model: new Scripted(bias), constitution: TOY, pairs, out: join(dir, 'bias', 'p.jsonl'), quiet: true });
  const recs = readJournal<LabelRecord>(swapped.journal);
  // debiased p(A) = (σ(2 + b) + 1 − σ(−2 + b)) / 2 for the good-first pair; the tie pair lands exactly on 0.5
  const want1 = (sig(2 + bias) + 1 - sig(-2 + bias)) / 2;
  assert.ok(Math.abs(recs[0]!.p_a - want1) < 1e-12);
  assert.ok(Math.abs(recs[1]!.p_a - (1 - want1)) < 1e-12, 'symmetric: the bias does not favour either reply');
  assert.ok(Math.abs(recs[2]!.p_a - 0.5) < 1e-12, 'no preference: exactly 0.5 after the swap');
  assert.equal(swapped.dropped, 1, 'the exact tie is dropped');
  // the measured bias: mean over questions of (p(first | a,b) + p(first | b,a))/2 − 0.5
  const wantBias = ((sig(2 + bias) + sig(-2 + bias)) / 2 - 0.5) * (2 / 3) + (sig(bias) - 0.5) / 3;
  assert.ok(Math.abs(swapped.positionBias! - wantBias) < 1e-12, `bias ${swapped.positionBias} vs ${wantBias}`);
  // without the swap the bias stays in the label
  const one = await labelPairs({ model: new Scripted(bias), constitution: TOY, pairs, out: join(dir, 'bias1', 'p.jsonl'), swap: false, quiet: true });
  assert.ok(Math.abs(readJournal<LabelRecord>(one.journal)[2]!.p_a - sig(bias)) < 1e-12);
  // chain of thought: every answer clamped to [0.4, 0.6], the reasoning kept
  const cot = await labelPairs({ model: new Scripted(bias, true), constitution: TOY, pairs, out: join(dir, 'cot', 'p.jsonl'), chainOfThought: true, quiet: true });
  for (const r of readJournal<LabelRecord>(cot.journal)) {
    for (const p of [...r.first, ...r.swapped]) assert.ok(p >= 0.4 && p <= 0.6);
    assert.equal(r.reasoning!.length, 2);
  }
  assert.ok(Math.abs(readJournal<LabelRecord>(cot.journal)[0]!.p_a - (0.6 + 1 - 0.4) / 2) < 1e-12);
});

test('direct RLAIF: the expected rating as the reward, deterministic for the same prompt and response', async () => {
  const score = constitutionalScorer(new Scripted(0), TOY, { principles: 2 });
  const a = await score(['Human: describe the cat\n\nAssistant:'], ['the cat is lovely.'], { promptIds: [], responseIds: [], finishReason: [] });
  const b = await score(['Human: describe the cat\n\nAssistant:'], ['the cat is lovely.'], { promptIds: [], responseIds: [], finishReason: [] });
  assert.deepEqual(Array.from(a as number[]), Array.from(b as number[]));
  // Σ r·softmax([0, .5, 1, 1.5, 2])_r
  const e = [0, 0.5, 1, 1.5, 2].map(Math.exp),
    z = e.reduce((x, y) => x + y, 0);
  assert.ok(Math.abs(a[0]! - e.reduce((s, v, i) => s + ((i + 1) * v) / z, 0)) < 1e-12);
});

test('kill -9 during `alignkit cai revise`, restart: every prompt appears exactly once in sft.jsonl', async () => {
  const { spawn } = await import('node:child_process');
  const { existsSync, writeFileSync } = await import('node:fs');
  const { packageRoot } = await import('../../src/engine/native.js');
  const promptsFile = join(dir, 'many.jsonl');
  const many = Array.from({ length: 60 }, (_, i) => ({ id: `q${i}`, prompt: request(THINGS[i % THINGS.length]!) }));
  writeFileSync(promptsFile, many.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const out = join(dir, 'killed');
  const args = [
    join(packageRoot(), 'dist', 'src', 'cli', 'main.js'),
    'cai',
    'revise',
    '--model',
    toy.id,
    '--constitution',
    join(dir, 'toy.yaml'),
    '--prompts',
    promptsFile,
    '--output_dir',
    out,
    '--batch_size',
    '2',
    '--max_new_tokens',
    '16',
    '--temperature',
    '0.3',
  ];
  writeFileSync(join(dir, 'toy.yaml'), JSON.stringify({ principles: TOY.principles }));
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0);
  const victim = spawn(process.execPath, args, { stdio: 'ignore' });
  const t0 = Date.now();
  while (lines(join(out, 'transcripts.jsonl')) < 6) {
    if (victim.exitCode !== null) assert.fail('the run ended before it could be killed');
    if (Date.now() - t0 > 60000) assert.fail('no progress after 60 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  victim.kill('SIGKILL');
  await new Promise((r) => victim.on('exit', r));
  const before = lines(join(out, 'transcripts.jsonl'));
  assert.ok(before >= 6 && before < 60, `killed after ${before} prompts`);
  const again = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  again.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  assert.equal(await new Promise((r) => again.on('exit', r)), 0);
  const res = JSON.parse(stdout) as { done: number; skipped: number };
  assert.equal(res.done + res.skipped, 60);
  for (const f of ['transcripts.jsonl', 'sft.jsonl']) {
    const ids = readFileSync(join(out, f), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    assert.equal(ids.length, 60, `${f}: one row per prompt`);
    assert.deepEqual([...new Set(ids)].sort(), many.map((m) => m.id).sort(), `${f}: every prompt exactly once`);
  }
});

test('cai run: every stage end to end on the toy model; a restart skips finished stages; a typo in a stage is caught first', async () => {
  const { writeFileSync, existsSync } = await import('node:fs');
  const { cli } = await import('../helpers/cli.js');
  const { Writable } = await import('node:stream');
  const promptsFile = join(dir, 'red.jsonl');
  writeFileSync(promptsFile, THINGS.map((w) => JSON.stringify({ id: w, prompt: request(w) })).join('\n') + '\n');
  writeFileSync(join(dir, 'toy.yaml'), JSON.stringify({ principles: TOY.principles }));
  const out = join(dir, 'recipe');
  const cfg = join(dir, 'cai.yaml');
  const yaml = (extra: string) =>
    writeFileSync(
      cfg,
      [
        `model_name_or_path: ${toy.id}`,
        `constitution: ${join(dir, 'toy.yaml')}`,
        `prompts: ${promptsFile}`,
        `eval_prompts: ${promptsFile}`,
        `output_dir: ${out}`,
        'max_new_tokens: 16',
        'temperature: 1.0',
        'seed: 3',
        'sft: {max_steps: 20, learning_rate: 1.0e-3, per_device_train_batch_size: 4}',
        'reward: {max_steps: 10, learning_rate: 1.0e-3, per_device_train_batch_size: 2}',
        'ppo: {max_steps: 2, per_device_train_batch_size: 4, response_length: 8, learning_rate: 1.0e-4}',
        extra,
      ].join('\n') + '\n',
    );
  let err = '';
  const sink = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) });
  yaml('dpo: {max_steps: 1, betaa: 0.1}');
  assert.equal(await cli(['cai', 'run', '--config', cfg], sink), 2);
  assert.match(err, /cai\.yaml:12: dpo\.betaa: unknown option \(did you mean beta\?\)/);
  assert.ok(!existsSync(join(out, 'sl')), 'nothing ran');
  yaml('');
  const t0 = performance.now();
  err = '';
  let stdout = '';
  const outSink = new Writable({ write: (c, _e, cb) => ((stdout += String(c)), cb()) });
  assert.equal(await cli(['cai', 'run', '--config', cfg], outSink, sink), 0, err);
  const first = (performance.now() - t0) / 1000;
  for (const s of ['sl', 'sl-cai', 'rlaif', 'reward', 'rl-cai']) assert.ok(existsSync(join(out, s, 'stage.json')), `${s} finished`);
  for (const s of ['sl-cai', 'reward', 'rl-cai']) assert.ok(existsSync(join(out, s, 'config.json')) && existsSync(join(out, s, 'metrics.jsonl')), `${s} is a Hugging Face model with metrics`);
  const r = JSON.parse(stdout) as { eval: { results: { name: string; win_rate: number; rating: number }[] } };
  assert.deepEqual(
    r.eval.results.map((x) => x.name),
    ['initial', 'sl-cai', 'rl-cai'],
  );
  assert.equal(r.eval.results[0]!.win_rate, 0.5);
  assert.ok(r.eval.results.every((x) => x.rating >= 1 && x.rating <= 5));
  // the SL-CAI policy answers kindly now: the judge (the toy model) prefers it to the initial one
  assert.ok(r.eval.results[1]!.win_rate > 0.6, `sl-cai win rate ${r.eval.results[1]!.win_rate}`);
  // a restart redoes nothing
  err = '';
  stdout = '';
  const t1 = performance.now();
  assert.equal(await cli(['cai', 'run', '--config', cfg], outSink, sink), 0);
  assert.match(err, /== sl: done before/);
  assert.match(err, /== rl-cai: done before/);
  assert.ok((performance.now() - t1) / 1000 < first / 2, 'the rerun skips the work');
  // alignkit eval with the toy model as an AI judge: the SL-CAI policy beats the initial one
  const { runEval } = await import('../../src/cli/eval.js');
  const evalFile = join(dir, 'eval-prompts.jsonl');
  writeFileSync(evalFile, THINGS.map((w) => JSON.stringify({ prompt: `Human: ${request(w)}\n\nAssistant:` })).join('\n') + '\n');
  const lines: string[] = [];
  const ev = await runEval({ model: [toy.id, join(out, 'sl-cai')], prompts: evalFile, ai_judge: toy.id, constitution: join(dir, 'toy.yaml'), samples: 1, max_new_tokens: 12, temperature: 0.3 }, (l) =>
    lines.push(l),
  );
  const win = (ev[join(out, 'sl-cai')] as { ai_win_rate?: number }).ai_win_rate!;
  assert.ok(win > 0.6, `AI win rate ${win}`);
  assert.match(lines[0]!, /AI win/);
});

test('direct RLAIF: the feedback model as the reward of GRPO', async () => {
  const { GRPOTrainer } = await import('../../src/train/grpo.js');
  const { PLAIN_TRANSCRIPT } = await import('../../src/feedback/text-model.js');
  const { responsePrompt } = await import('../../src/cai/prompts.js');
  const t = new GRPOTrainer({
    model: toy.id,
    rewardFuncs: constitutionalScorer(toy, TOY),
    trainDataset: THINGS.map((w) => ({ prompt: responsePrompt(PLAIN_TRANSCRIPT, request(w)) as string })),
    args: { output_dir: join(dir, 'grpo-rlaif'), max_steps: 2, per_device_train_batch_size: 4, num_generations: 2, max_completion_length: 8, learning_rate: 1e-4, logging_steps: 1, save_steps: 0 },
  });
  try {
    const { metrics } = await t.train({ quiet: true });
    assert.ok(metrics.reward! >= 1 && metrics.reward! <= 5, `the reward is an expected 1–5 rating: ${metrics.reward}`);
  } finally {
    t.dispose();
  }
});
