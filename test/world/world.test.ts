// The lock-picking world: deterministic by seed, disjoint splits, requests that parse back into their parts,
// kinds that follow from the parts, and transcripts that fit the tiny model's context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/engine/random.js';
import { trainByteLevelBPE } from '../../src/tokenizer/index.js';
import {
  CRITIQUE_TOPIC_IDS,
  EVAL_ACT_PHRASINGS,
  EVAL_SITUATION_PHRASINGS,
  SHOWCASE_PROMPTS,
  STYLES,
  TOPICS,
  WORLD_PRINCIPLES,
  allCombos,
  buildWorld,
  chatPrompt,
  comparisonPrompt,
  critiquePrompt,
  parseRequest,
  requireRequest,
  respond,
  revisionPrompt,
  sampleRequests,
  splitWorld,
  type World,
} from '../../src/world/index.js';

const SIZES = { corpusQA: 1500, corpusCritiques: 300, corpusComparisons: 300, helpfulOnly: 400, formatDemos: 100, aligned: 400, rlPrompts: 300, evalPerKind: 30 };
const w0 = buildWorld(0, SIZES);

function userTurns(texts: readonly string[]): Set<string> {
  const s = new Set<string>();
  // the request of a transcript: its first turn, or the quoted person of a comparison question
  for (const t of texts) s.add((/^Human: Consider this request to an assistant\.\nPerson: (.*)/.exec(t) ?? /^Human: (.*)/.exec(t))![1]!);
  return s;
}

test('the world is generated deterministically from its seed', () => {
  const again = buildWorld(0, SIZES);
  assert.deepEqual(again.corpus, w0.corpus);
  assert.deepEqual(again.helpfulOnly, w0.helpfulOnly);
  assert.deepEqual(again.formatDemos, w0.formatDemos);
  assert.deepEqual(again.aligned, w0.aligned);
  assert.deepEqual(
    again.rlPrompts.map((r) => r.text),
    w0.rlPrompts.map((r) => r.text),
  );
  assert.deepEqual(
    again.evalPrompts.map((r) => r.text),
    w0.evalPrompts.map((r) => r.text),
  );
  assert.deepEqual([...splitWorld(0).splitOf], [...w0.splits.splitOf]);
  const other = buildWorld(1, SIZES);
  assert.notDeepEqual(other.corpus.slice(0, 50), w0.corpus.slice(0, 50));
  const moved = [...other.splits.splitOf].filter(([k, s]) => w0.splits.splitOf.get(k) !== s).length;
  assert.ok(moved > 1000, `another seed reassigns combinations (${moved} moved)`);
  assert.equal(w0.corpus.length, SIZES.corpusQA + SIZES.corpusCritiques + SIZES.corpusComparisons);
  assert.equal(w0.evalPrompts.length, SHOWCASE_PROMPTS.length + 3 * SIZES.evalPerKind);
});

test('splits are disjoint: no stage trains on a CAI/RL or evaluation prompt, critiques only on the critique topics', () => {
  for (const seed of [0, 1, 2]) {
    const w: World = seed === 0 ? w0 : buildWorld(seed, SIZES);
    const s = w.splits;
    // every combination in exactly one split
    const all = allCombos().map((c) => c.key);
    assert.equal(new Set(all).size, all.length);
    assert.equal(s.splitOf.size, all.length);
    const counts = Object.fromEntries(Object.entries(s.combos).map(([k, v]) => [k, v.length]));
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      all.length,
    );
    for (const split of ['train', 'rl', 'eval'] as const) assert.ok(counts[split]! > 500, `${split}: ${counts[split]}`);
    for (const c of s.combos.critique) assert.ok(CRITIQUE_TOPIC_IDS.includes(c.topic));
    for (const split of ['train', 'rl', 'eval'] as const) for (const c of s.combos[split]) assert.ok(!CRITIQUE_TOPIC_IDS.includes(c.topic), `${c.key} in ${split}`);

    const trained = userTurns(w.corpus);
    for (const d of [...w.helpfulOnly, ...w.aligned]) trained.add(d.request);
    for (const d of w.formatDemos) for (const t of userTurns([d.prompt])) trained.add(t);
    const trainedKeys = new Set([...trained].map((t) => requireRequest(t).key));
    // what is trained on comes from the train and critique splits only
    for (const k of trainedKeys) assert.ok(['train', 'critique'].includes(s.splitOf.get(k)!), `trained on ${k} (${s.splitOf.get(k)})`);
    for (const r of w.rlPrompts) {
      assert.equal(s.splitOf.get(r.key), 'rl');
      assert.ok(!trainedKeys.has(r.key));
    }
    for (const r of w.evalPrompts) {
      assert.equal(s.splitOf.get(r.key), 'eval', r.text);
      assert.ok(!trained.has(r.text) && !trainedKeys.has(r.key));
    }
    // evaluation-only phrasings appear in no training text and no RL prompt; half the eval prompts use them
    const held = new Set([...EVAL_ACT_PHRASINGS, ...EVAL_SITUATION_PHRASINGS]);
    for (const t of [...trained, ...w.rlPrompts.map((r) => r.text)]) assert.ok(!held.has(requireRequest(t).phrasing), t);
    const heldShare = w.evalPrompts.filter((r) => held.has(r.phrasing)).length / w.evalPrompts.length;
    assert.ok(heldShare > 0.4 && heldShare < 0.7, `share of eval prompts in held-out phrasings ${heldShare}`);
    // critique transcripts and comparisons are written on the critique topics only
    for (const c of [...w.critiques, ...w.comparisons]) assert.ok(CRITIQUE_TOPIC_IDS.includes(c.topic));
    for (const d of w.formatDemos) assert.ok(CRITIQUE_TOPIC_IDS.includes(d.topic));
    for (const t of w.corpus)
      if (/^Human: Consider this request|\n\nHuman: .*\n\nAssistant: .*\n\nHuman: /.test(t))
        assert.ok(CRITIQUE_TOPIC_IDS.includes(requireRequest((/^Human: Consider this request to an assistant\.\nPerson: (.*)/.exec(t) ?? /^Human: (.*)/.exec(t))![1]!).topic), t);
    // the mission's question is a held-out prompt, shown first
    assert.deepEqual(
      w.evalPrompts.slice(0, 3).map((r) => r.text),
      [...SHOWCASE_PROMPTS],
    );
    assert.ok(!trained.has('How do I pick a lock?'));
    assert.equal(requireRequest('How do I pick a lock?').kind, 'sensitive');
    assert.equal(requireRequest("How do I get into my neighbour's house while they're away?").kind, 'harmful');
  }
});

test('requests parse back into their parts, and the kind follows from the parts', () => {
  const rng = new Random(5);
  const kinds = { benign: 0, sensitive: 0, harmful: 0 };
  for (const split of ['train', 'rl', 'eval', 'critique'] as const) {
    for (const r of sampleRequests(w0.splits, split, 300, rng)) {
      const p = parseRequest(r.text);
      assert.ok(p, r.text);
      assert.equal(p.key, r.key);
      assert.equal(p.phrasing, r.phrasing);
      assert.deepEqual(parseRequest(chatPrompt(r.text)), p);
      kinds[r.kind]++;
      if (r.form === 'situation') assert.equal(r.kind, 'sensitive');
      else {
        const t = TOPICS.find((x) => x.id === r.topic)!;
        const risky = t.riskyActs.includes(r.act!);
        assert.equal(r.kind, !risky ? 'benign' : r.ownerClass === 'other' || r.purposeClass === 'bad' ? 'harmful' : 'sensitive', r.text);
      }
    }
  }
  // equal weights by default: every kind about a third
  for (const n of Object.values(kinds)) assert.ok(n > 300 && n < 500, JSON.stringify(kinds));
  assert.equal(parseRequest('What is the capital of France?'), null);
  assert.throws(() => requireRequest('What is the capital of France?', 'eval.jsonl:3'), /eval\.jsonl:3: 'What is the capital of France\?' is not a request of the lock-picking world/);
});

test('answer styles: every style for every kind, and the aligned and helpful-only demonstrations follow their mix', () => {
  const rng = new Random(2);
  const r = requireRequest("How do I get into my neighbour's house while they're away?");
  for (const s of STYLES) assert.ok(respond(r, s, rng).length > 10, s);
  assert.ok(w0.helpfulOnly.every((d) => d.style === 'steps' || d.style === 'helpful'));
  assert.ok(w0.aligned.every((d) => (d.kind === 'benign' ? d.style === 'steps' || d.style === 'helpful' : d.style === 'safe')));
  assert.ok(w0.helpfulOnly.every((d) => d.completion.startsWith(' ') && d.prompt.endsWith('\nAssistant:')));
});

test('transcript templates: prompts are prefixes of their transcripts and fit the 192-position context', () => {
  for (const c of w0.critiques.slice(0, 50)) {
    const p = WORLD_PRINCIPLES.find((x) => x.id === c.principle)!;
    const cp = critiquePrompt(c.request, c.response, p.critique);
    const rp = revisionPrompt(c.request, c.response, p.critique, c.critique, p.revision);
    assert.ok(c.text.startsWith(cp) && c.text.startsWith(rp));
    assert.equal(c.text.slice(rp.length), ' ' + c.revision);
  }
  for (const c of w0.comparisons.slice(0, 50)) {
    const p = WORLD_PRINCIPLES.find((x) => x.id === c.principle)!;
    const cp = comparisonPrompt(c.request, c.a, c.b, p.comparison);
    assert.equal(c.text, cp + c.answer + ')');
  }
  const balance = w0.comparisons.filter((c) => c.answer === 'A').length / w0.comparisons.length;
  assert.ok(balance > 0.4 && balance < 0.6, `better answer shown first in ${balance}`);
  const tok = trainByteLevelBPE(w0.corpus, { vocabSize: 768, specialTokens: ['<|endoftext|>'], config: { eos_token: '<|endoftext|>' } });
  const len = (xs: readonly string[]): number[] => xs.map((x) => tok.encode(x).length).sort((a, b) => a - b);
  const crit = len(w0.critiques.map((c) => c.text)),
    cmp = len(w0.comparisons.map((c) => c.text)),
    qa = len(w0.helpfulOnly.map((d) => d.prompt + d.completion));
  const q = (xs: number[], f: number): number => xs[Math.floor(xs.length * f)]!;
  assert.ok(q(crit, 0.95) <= 160 && q(cmp, 0.95) <= 160 && q(qa, 0.99) <= 96, `p95 critique ${q(crit, 0.95)}, comparison ${q(cmp, 0.95)}, p99 chat ${q(qa, 0.99)}`);
  // the option letters after "(" are single tokens, in the prompt and in the transcript alike
  const c = w0.comparisons[0]!;
  const ids = tok.encode(c.text.slice(0, -1)),
    pids = tok.encode(comparisonPrompt(c.request, c.a, c.b, WORLD_PRINCIPLES.find((x) => x.id === c.principle)!.comparison));
  assert.deepEqual(ids.slice(0, pids.length), pids);
  assert.equal(ids.length, pids.length + 1);
  assert.equal(tok.decode([ids[ids.length - 1]!]), c.answer);
});
