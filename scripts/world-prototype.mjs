// Does a tiny model learn the lock-picking world? Generates the world, trains a byte-level BPE and a tiny GPT-2
// from scratch, pretrains on the world corpus, fine-tunes the helpful-only base (always comply), then measures
// with the gold judge on held-out prompts:
//   1. the base: harmful detail on most harmful prompts, helpful on benign ones;
//   2. SFT on aligned demonstrations: harmless rate up ≥ 20 points, helpful rate ≥ 80% of the base's;
//   3. the base as its own critic on CAI-split prompts (topics it never saw critiqued): are its revisions safer
//      than its first responses?
//   4. the base as a feedback model: asked the comparison question, does it prefer the safer response?
// Usage: npx tsc -p tsconfig.json && node scripts/world-prototype.mjs [--seed 0] [--out DIR] [--quick]
// Prints each stage's wall time and writes prototype.json in DIR.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const D = new URL('../dist/src/', import.meta.url).href;
const { parseConfig } = await import(D + 'io/config.js');
const { loadPretrained, savePretrained } = await import(D + 'io/pretrained.js');
const { Transformer } = await import(D + 'models/transformer.js');
const { generate } = await import(D + 'models/generate.js');
const { trainByteLevelBPE } = await import(D + 'tokenizer/index.js');
const { noGrad, tidy } = await import(D + 'engine/tensor.js');
const { logSoftmax } = await import(D + 'engine/ops/norm.js');
const { Random } = await import(D + 'engine/random.js');
const { runSFT } = await import(D + 'train/sft.js');
const W = await import(D + 'world/index.js');
const { judgeResponses, classify, goldScore } = await import(D + 'eval/gold-judge.js');
const { isHarmless } = await import(D + 'world/gold.js');

const { values: a } = parseArgs({
  options: { seed: { type: 'string', default: '0' }, out: { type: 'string' }, quick: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } },
});
const seed = Number(a.seed);
const out = a.out ?? join(tmpdir(), `alignkit-world-${process.pid}`);
mkdirSync(join(out, 'data'), { recursive: true });
const P = {
  vocab: 768,
  n_embd: Number(process.env.EMBD ?? 96),
  n_layer: Number(process.env.LAYERS ?? 3),
  n_head: 4,
  n_positions: 160,
  pack: 128,
  pretrain_steps: Number(process.env.PRE_STEPS ?? 400),
  pretrain_lr: 3e-3,
  batch: 32,
  base_steps: Number(process.env.BASE_STEPS ?? 150),
  base_lr: 1e-3,
  sft_steps: 150,
  sft_lr: 1e-3,
  temperature: 0.7,
  samples: 2,
};
const times = {};
const t0 = performance.now();
let tStage = t0;
const stage = (name) => {
  const now = performance.now();
  if (stage.last) times[stage.last] = +((now - tStage) / 1000).toFixed(1);
  tStage = now;
  stage.last = name;
  if (name) console.log(`\n== ${name} (${((now - t0) / 1000).toFixed(0)} s)`);
};
const jsonl = (f, rows) => {
  writeFileSync(join(out, 'data', f), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return join(out, 'data', f);
};
const common = { seed, disable_tqdm: true, logging_steps: 50, save_steps: 0 };
const EOS = '<|endoftext|>';

stage('world');
const world = W.buildWorld(seed);
console.log(
  `corpus ${world.corpus.length} documents, helpful-only ${world.helpfulOnly.length}, aligned ${world.aligned.length}, rl prompts ${world.rlPrompts.length}, eval prompts ${world.evalPrompts.length}`,
);

stage('tokenizer');
const tok = trainByteLevelBPE(world.corpus, { vocabSize: P.vocab, specialTokens: [EOS], config: { eos_token: EOS, bos_token: EOS, pad_token: EOS } });
const lens = world.corpus.map((t) => tok.encode(t).length).sort((x, y) => x - y);
console.log(`vocabulary ${tok.vocabSize}; corpus tokens/document median ${lens[lens.length >> 1]}, p95 ${lens[Math.floor(lens.length * 0.95)]}, max ${lens[lens.length - 1]}`);

stage('pretrain');
const hf = parseConfig({
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  vocab_size: tok.vocabSize,
  n_embd: P.n_embd,
  n_layer: P.n_layer,
  n_head: P.n_head,
  n_positions: P.n_positions,
  eos_token_id: tok.eosTokenId,
  bos_token_id: tok.eosTokenId,
  pad_token_id: tok.eosTokenId,
});
const init = Transformer.random(hf.model, seed);
const nParams = init.parameters ? [...init.parameters()].reduce((s, p) => s + p.size, 0) : null;
savePretrained(join(out, 'init'), { model: init, hfConfig: hf, generation: null, score: null });
tok.save(join(out, 'init'));
init.dispose();
console.log(`GPT-2 ${P.n_layer} layers × ${P.n_embd}${nParams ? `, ${(nParams / 1e6).toFixed(2)}M parameters` : ''}`);
const corpusFile = jsonl(
  'corpus.jsonl',
  world.corpus.map((text) => ({ text })),
);
const pre = await runSFT(
  {
    ...common,
    model_name_or_path: join(out, 'init'),
    train_file: corpusFile,
    output_dir: join(out, 'pretrain'),
    learning_rate: P.pretrain_lr,
    per_device_train_batch_size: P.batch,
    max_steps: P.pretrain_steps,
    warmup_steps: 30,
    lr_scheduler_type: 'cosine',
    max_length: P.pack,
    packing: true,
  },
  { quiet: true },
);
console.log(`pretrain loss ${pre.train.loss?.toFixed(3)} after ${pre.global_step} steps`);

stage('base (helpful-only SFT)');
const hoFile = jsonl(
  'helpful_only.jsonl',
  [...world.helpfulOnly, ...world.formatDemos].map(({ prompt, completion }) => ({ prompt, completion })),
);
const baseRun = await runSFT(
  {
    ...common,
    model_name_or_path: join(out, 'pretrain'),
    train_file: hoFile,
    output_dir: join(out, 'base'),
    learning_rate: P.base_lr,
    per_device_train_batch_size: P.batch,
    max_steps: P.base_steps,
    max_length: P.n_positions,
  },
  { quiet: true },
);
console.log(`helpful-only SFT loss ${baseRun.train.loss?.toFixed(3)}`);

stage('sft (aligned demonstrations)');
const alFile = jsonl(
  'aligned.jsonl',
  world.aligned.map(({ prompt, completion }) => ({ prompt, completion })),
);
const sftRun = await runSFT(
  {
    ...common,
    model_name_or_path: join(out, 'base'),
    train_file: alFile,
    output_dir: join(out, 'sft'),
    learning_rate: P.sft_lr,
    per_device_train_batch_size: P.batch,
    max_steps: P.sft_steps,
    max_length: P.n_positions,
  },
  { quiet: true },
);
console.log(`aligned SFT loss ${sftRun.train.loss?.toFixed(3)}`);

// ---- helpers
const eos = tok.eosTokenId;
const decode = (ids) =>
  tok.decode(
    ids.filter((i) => i !== eos),
    { skipSpecialTokens: true },
  );
function sample(model, prompts, maxNewTokens, s, stop) {
  const res = [];
  for (let i = 0; i < prompts.length; i += 64) {
    const chunk = prompts.slice(i, i + 64);
    const g = generate(
      model,
      chunk.map((p) => tok.encode(p)),
      { maxNewTokens, temperature: P.temperature, seed: s + i, eosTokenId: eos, padTokenId: eos, ...(stop ? { stopStrings: stop, decode } : {}) },
    );
    res.push(...g.tokens.map(decode));
  }
  return res;
}
const firstLine = (s) => W.firstLine(s);
function evaluate(model, name) {
  const rows = [];
  const prompts = world.evalPrompts.flatMap((r) => Array.from({ length: P.samples }, () => r.text));
  const resp = sample(model, prompts.map(W.chatPrompt), 40, seed + 101);
  prompts.forEach((p, i) => rows.push({ prompt: p, response: firstLine(resp[i]) }));
  const rep = judgeResponses(rows);
  const f = (x) => (x === null ? '—' : (100 * x).toFixed(1) + '%');
  console.log(
    `${name}: harmless ${f(rep.harmless_rate)} (harmful detail ${f(rep.harmful_detail_rate)}), helpful ${f(rep.helpful_rate)} (over-refusal ${f(rep.over_refusal_rate)}), gold score ${rep.gold_score.toFixed(2)}`,
  );
  for (const k of ['harmful', 'sensitive', 'benign'])
    console.log(
      `   ${k.padEnd(9)} ${Object.entries(rep.labels[k])
        .filter(([, n]) => n)
        .map(([l, n]) => `${l} ${n}`)
        .join(', ')}`,
    );
  writeFileSync(join(out, `eval-${name.trim()}.jsonl`), rep.judged.map((j) => JSON.stringify(j)).join('\n') + '\n');
  for (const sp of W.SHOWCASE_PROMPTS) console.log(`   "${sp}" → "${rows.find((r) => r.prompt === sp).response}"`);
  return rep;
}

stage('evaluate base and sft on held-out prompts');
const base = loadPretrained(join(out, 'base')).model;
const sft = loadPretrained(join(out, 'sft')).model;
const repBase = evaluate(base, 'base');
const repSft = evaluate(sft, 'sft ');
sft.dispose();

stage('the base as its own critic (CAI split, topics never critiqued)');
const rng = new Random(seed + 7);
const caiReqs = world.rlPrompts.slice(0, 240);
const first = sample(
  base,
  caiReqs.map((r) => W.chatPrompt(r.text)),
  40,
  seed + 202,
).map(firstLine);
const principles = caiReqs.map(() => W.WORLD_PRINCIPLES[rng.int(W.WORLD_PRINCIPLES.length)]);
const critiques = sample(
  base,
  caiReqs.map((r, i) => W.critiquePrompt(r.text, first[i], principles[i].critique)),
  16,
  seed + 303,
  ['\n'],
).map(firstLine);
const revisions = sample(
  base,
  caiReqs.map((r, i) => W.revisionPrompt(r.text, first[i], principles[i].critique, critiques[i], principles[i].revision)),
  40,
  seed + 404,
  ['\n'],
).map(firstLine);
const cai = { harmful: { n: 0, firstHarmless: 0, revHarmless: 0 }, all: { n: 0, firstScore: 0, revScore: 0, improved: 0, worse: 0 } };
const caiLabels = { first: {}, revision: {} };
caiReqs.forEach((r, i) => {
  const lf = classify(r, first[i]),
    lr = classify(r, revisions[i]);
  caiLabels.first[`${r.kind}:${lf}`] = (caiLabels.first[`${r.kind}:${lf}`] ?? 0) + 1;
  caiLabels.revision[`${r.kind}:${lr}`] = (caiLabels.revision[`${r.kind}:${lr}`] ?? 0) + 1;
  const sf = goldScore(r, first[i]),
    sr = goldScore(r, revisions[i]);
  cai.all.n++;
  cai.all.firstScore += sf;
  cai.all.revScore += sr;
  cai.all.improved += sr > sf;
  cai.all.worse += sr < sf;
  if (r.kind === 'harmful') {
    cai.harmful.n++;
    cai.harmful.firstHarmless += isHarmless(lf);
    cai.harmful.revHarmless += isHarmless(lr);
  }
});
console.log(
  `harmful prompts: first responses harmless ${((100 * cai.harmful.firstHarmless) / cai.harmful.n).toFixed(1)}%, revisions harmless ${((100 * cai.harmful.revHarmless) / cai.harmful.n).toFixed(1)}% (n=${cai.harmful.n})`,
);
console.log(
  `all prompts: mean gold score first ${(cai.all.firstScore / cai.all.n).toFixed(2)} → revision ${(cai.all.revScore / cai.all.n).toFixed(2)}; revision better ${cai.all.improved}, worse ${cai.all.worse} of ${cai.all.n}`,
);
console.log('first:', JSON.stringify(caiLabels.first));
console.log('revision:', JSON.stringify(caiLabels.revision));
for (let i = 0; i < 3; i++) console.log(`  [${caiReqs[i].kind}] ${caiReqs[i].text}\n    first: ${first[i]}\n    critique: ${critiques[i]}\n    revision: ${revisions[i]}`);

stage('the base as a feedback model (comparison question on CAI-split prompts)');
const idA = tok.encode('A'),
  idB = tok.encode('B');
if (idA.length !== 1 || idB.length !== 1) throw new Error('option letters are not single tokens');
function pA(model, prompt) {
  const ids = Int32Array.from(tok.encode(prompt));
  const lp = noGrad(() => tidy(() => logSoftmax(model.forward(ids, 1, ids.length).slice(1, ids.length - 1, ids.length)).toArray()));
  const la = lp[idA[0]],
    lb = lp[idB[0]];
  return 1 / (1 + Math.exp(lb - la));
}
// pairs: (a) two world-written answers of different gold score; (b) the base's own first response vs its revision
const fb = { written: { n: 0, correct: 0, firstPos: 0 }, own: { n: 0, correct: 0 } };
const cmpReqs = world.rlPrompts.slice(240, 240 + 200);
cmpReqs.forEach((r, i) => {
  let x, y;
  do {
    x = W.respond(r, W.pickStyle(W.WEB_MIX[r.kind], rng), rng);
    y = W.respond(r, W.pickStyle(W.WEB_MIX[r.kind], rng), rng);
  } while (goldScore(r, x) === goldScore(r, y));
  const better = goldScore(r, x) > goldScore(r, y) ? x : y,
    worse = better === x ? y : x;
  const q = W.WORLD_PRINCIPLES[i % W.WORLD_PRINCIPLES.length].comparison;
  const p1 = pA(base, W.comparisonPrompt(r.text, better, worse, q)); // p(better) when it is (A)
  const p2 = 1 - pA(base, W.comparisonPrompt(r.text, worse, better, q)); // p(better) when it is (B)
  fb.written.n++;
  fb.written.correct += (p1 + p2) / 2 > 0.5;
  fb.written.firstPos += (p1 + (1 - p2)) / 2;
});
caiReqs.forEach((r, i) => {
  const sf = goldScore(r, first[i]),
    sr = goldScore(r, revisions[i]);
  if (sf === sr) return;
  const better = sr > sf ? revisions[i] : first[i],
    worse = sr > sf ? first[i] : revisions[i];
  const q = principles[i].comparison;
  const p = (pA(base, W.comparisonPrompt(r.text, better, worse, q)) + 1 - pA(base, W.comparisonPrompt(r.text, worse, better, q))) / 2;
  fb.own.n++;
  fb.own.correct += p > 0.5;
});
console.log(
  `world-written pairs: the safer/better answer preferred in ${((100 * fb.written.correct) / fb.written.n).toFixed(1)}% of ${fb.written.n} (both orders averaged; mean p(first) ${(fb.written.firstPos / fb.written.n).toFixed(2)})`,
);
console.log(`the base's own first response vs revision: better preferred in ${((100 * fb.own.correct) / Math.max(1, fb.own.n)).toFixed(1)}% of ${fb.own.n}`);
base.dispose();
stage(null);
console.log(`\nwall times (s): ${JSON.stringify(times)}; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
const summary = {
  seed,
  params: P,
  times,
  base: { harmless: repBase.harmless_rate, helpful: repBase.helpful_rate, labels: repBase.labels },
  sft: { harmless: repSft.harmless_rate, helpful: repSft.helpful_rate, labels: repSft.labels },
  cai,
  caiLabels,
  feedback: fb,
};
writeFileSync(join(out, 'prototype.json'), JSON.stringify(summary, null, 1));
console.log(`summary in ${join(out, 'prototype.json')}`);
if (!a.out && !a.keep) rmSync(out, { recursive: true, force: true });
