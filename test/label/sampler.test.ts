// Sampling in the background: pairs come from a worker thread while the server's thread stays responsive; one
// policy or two; a round opened by `alignkit label round` is picked up by the running server; prompts that do
// not fit are skipped with a reason; a tokenizer larger than the model is refused; sampling is seeded.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { labelMain } from '../helpers/cli.js';
import { FeedbackDB } from '../../src/label/db.js';
import type { PromptRecord } from '../../src/label/inputs.js';
import { startServer } from '../../src/label/server.js';
import { cleanTmp, hfFixture, makePolicy, makeSlowPolicy, request, tmp, writeJsonl } from './helpers.js';

after(cleanTmp);

function capture(): { stream: Writable; text: () => string } {
  let t = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((t += String(c)), cb()) }), text: () => t };
}

const prompt = (k: number, p: PromptRecord['prompt']): PromptRecord => ({ line: k, id: `q${k}`, prompt: p });

interface PairRow {
  round_id: number;
  prompt: string;
  response_a: string;
  response_b: string;
  source_a: string;
  source_b: string;
  meta: string;
}

test('pairs are sampled in a worker thread while the server thread stays responsive; long prompts are skipped', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const policy = makeSlowPolicy(join(dir, 'policy'));
  const store = FeedbackDB.open(join(dir, 'fb.sqlite'));
  const token = store.addAnnotator('ann').token;
  store.openRound({
    source: 'policy',
    policy,
    input: 'prompts.jsonl',
    settings: { maxNewTokens: 480, temperature: 1, seed: 11 },
    prompts: [
      prompt(1, 'Tell me a story about a cat.'),
      prompt(2, 'x '.repeat(1200)),
      prompt(3, [{ role: 'user', content: 'What is the capital of France?' }]),
      prompt(4, 'Explain why the sky is blue.'),
    ],
  });
  const logs: string[] = [];
  const server = await startServer({ store, port: 0, lookahead: 100, pollMs: 50, log: (l) => logs.push(l) });
  try {
    let maxLag = 0,
      last = performance.now(),
      answered = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 5);
      last = now;
    }, 5);
    // the server answers while the worker samples
    const first = await request(new URL('/api/next', server.url).href, { token });
    assert.equal(first.status, 200);
    answered++;
    const t0 = performance.now();
    await server.sampler.settled();
    const sampling = performance.now() - t0;
    clearInterval(timer);
    // sampling on this thread would stall it for a whole prompt's samples at least
    const perPrompt = sampling / 3;
    assert.ok(perPrompt > 100, `sampling took ${sampling.toFixed(0)} ms: too fast to tell`);
    assert.ok(maxLag < perPrompt / 2, `the server thread lagged ${maxLag.toFixed(0)} ms while the worker sampled (${perPrompt.toFixed(0)} ms a prompt)`);
    const pairs = store.db.prepare('SELECT * FROM pairs ORDER BY id').all() as PairRow[];
    assert.equal(pairs.length, 3);
    for (const p of pairs) {
      const meta = JSON.parse(p.meta) as { tokens: number[]; finish: string[] };
      assert.ok(
        meta.tokens.every((n) => n >= 1 && n <= 480),
        p.meta,
      );
      assert.equal(typeof p.response_a, 'string');
      assert.notEqual(p.response_a, p.response_b, 'two samples of one policy differ');
      assert.equal(p.source_a, policy);
      assert.equal(p.source_b, policy);
    }
    assert.deepEqual(JSON.parse(pairs[1]!.prompt), [{ role: 'user', content: 'What is the capital of France?' }]);
    const failed = store.db.prepare("SELECT line, error FROM prompts WHERE status = 'failed'").all() as { line: number; error: string }[];
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.line, 2);
    assert.match(failed[0]!.error, /the prompt is \d+ tokens, the model .* reads at most 512/);
    assert.ok(logs.some((l) => /prompt \d+ skipped/.test(l)));
    const next = await request(new URL('/api/next', server.url).href, { token });
    assert.equal(next.body.progress.sampling, 0);
    assert.equal(next.body.progress.ready, 3);
    assert.ok(answered > 0);
  } finally {
    await server.close();
    store.close();
  }
});

test('two policies, then a new round of a newer policy is picked up by the running server', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const polA = makePolicy(join(dir, 'a'));
  const polB = makePolicy(join(dir, 'b'), 'tiny-gpt2-ref');
  const db = join(dir, 'fb.sqlite');
  const promptsFile = writeJsonl(join(dir, 'prompts.jsonl'), [{ prompt: 'Tell me a story.' }, { prompt: 'Why is the sky blue?' }]);
  const store = FeedbackDB.open(db);
  const token = store.addAnnotator('ann').token;
  store.openRound({
    source: 'policy',
    policy: polA,
    policyB: polB,
    input: promptsFile,
    settings: { maxNewTokens: 12, temperature: 1, seed: 1 },
    prompts: [prompt(1, 'Tell me a story.'), prompt(2, 'Why is the sky blue?')],
  });
  const server = await startServer({ store, port: 0, pollMs: 50 });
  try {
    await server.sampler.settled();
    const r1 = store.db.prepare('SELECT * FROM pairs WHERE round_id = 1').all() as PairRow[];
    assert.equal(r1.length, 2);
    assert.ok(r1.every((p) => p.source_a === polA && p.source_b === polB));
    const item = (await request(new URL('/api/next', server.url).href, { token })).body.item;
    assert.equal(item.round, 1);
    assert.equal((await request(new URL('/api/label', server.url).href, { method: 'POST', token, json: { assignmentId: item.assignmentId, choice: 'left' } })).status, 200);

    // `alignkit label round` from another process would do the same: a new round in the database
    const out = capture();
    const roundOpened = once(server.sampler, 'round');
    assert.equal(await labelMain(['round', '--db', db, '--policy', polB, '--max-new-tokens', '6', '--seed', '5'], out.stream, out.stream), 0, out.text());
    assert.match(out.text(), /opened round 2: two samples of .*\/b, prompts from .*prompts\.jsonl/);
    assert.deepEqual(await roundOpened, [2]);
    await server.sampler.settled();
    const r2 = store.db.prepare('SELECT * FROM pairs WHERE round_id = 2').all() as PairRow[];
    assert.equal(r2.length, 2, "the new round reuses the previous round's prompts");
    for (const p of r2) {
      assert.ok(p.source_a === polB && p.source_b === polB);
      assert.ok((JSON.parse(p.meta) as { tokens: number[] }).tokens.every((n) => n <= 6));
    }
    const next = (await request(new URL('/api/next', server.url).href, { token })).body;
    assert.equal(next.item.round, 2, 'annotators now get the new round');
    assert.equal(next.progress.round, 2);

    // serving the database with the old policy is refused with a pointer to `label round`
    const err = capture();
    assert.equal(await labelMain(['serve', '--db', db, '--policy', polA, '--prompts', promptsFile, '--port', '0'], err.stream, err.stream), 2);
    assert.match(err.text(), /the latest round is round 2: .*; to label a newer policy open a new round \(alignkit label round/);
  } finally {
    await server.close();
    store.close();
  }
});

test('sampling is seeded by the round seed and the prompt: the same pairs again', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const policy = makePolicy(join(dir, 'p'));
  const texts: string[][] = [];
  for (const name of ['one', 'two']) {
    const store = FeedbackDB.open(join(dir, `${name}.sqlite`));
    store.openRound({ source: 'policy', policy, input: 'x', settings: { maxNewTokens: 10, temperature: 1, seed: 42 }, prompts: [prompt(1, 'Tell me a story.'), prompt(2, 'Hello')] });
    const server = await startServer({ store, port: 0 });
    await server.sampler.settled();
    texts.push((store.db.prepare('SELECT response_a, response_b FROM pairs ORDER BY id').all() as { response_a: string; response_b: string }[]).flatMap((r) => [r.response_a, r.response_b]));
    await server.close();
    store.close();
  }
  assert.equal(texts[0]!.length, 4);
  assert.deepEqual(texts[0], texts[1]);
});

test('a tokenizer with more tokens than the model has rows is refused with a clear error', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const policy = makePolicy(join(dir, 'p'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(hfFixture('tok-bytelevel'), f), join(policy, f));
  const store = FeedbackDB.open(join(dir, 'fb.sqlite'));
  const token = store.addAnnotator('ann').token;
  store.openRound({ source: 'policy', policy, input: 'x', settings: { maxNewTokens: 10, temperature: 1, seed: 1 }, prompts: [prompt(1, 'Hello')] });
  const logs: string[] = [];
  const server = await startServer({ store, port: 0, log: (l) => logs.push(l) });
  try {
    await server.sampler.settled();
    const st = server.sampler.status();
    assert.equal(st.state, 'error');
    assert.match(st.message!, /the tokenizer has 2000 tokens but the model only 1000 embedding rows/);
    const next = (await request(new URL('/api/next', server.url).href, { token })).body;
    assert.equal(next.item, null);
    assert.equal(next.sampler.state, 'error', 'the page learns why nothing comes');
    assert.ok(logs.some((l) => l.includes('2000 tokens')));
  } finally {
    await server.close();
    store.close();
  }
});

test('add-annotator prints the token once; only its hash is stored; stats and export report counts', async () => {
  const dir = tmp();
  const db = join(dir, 'new', 'fb.sqlite');
  const pairsFile = writeJsonl(join(dir, 'pairs.jsonl'), [
    { prompt: 'Q1', response_a: 'x1', response_b: 'y1' },
    { prompt: 'Q2', response_a: 'x2', response_b: 'y2' },
  ]);
  const out = capture(),
    err = capture();
  assert.equal(await labelMain(['add-annotator', 'dana', '--db', db], out.stream, err.stream), 0);
  const token = out.text().trim();
  assert.match(token, /^ak_[\w-]{43}$/);
  assert.match(err.text(), /shown only this once/);
  const raw = readFileSync(db);
  assert.equal(raw.includes(token), false);
  const e2 = capture();
  assert.equal(await labelMain(['add-annotator', 'dana', '--db', db], e2.stream, e2.stream), 2);
  assert.match(e2.text(), /annotator "dana" already exists/);

  const store = FeedbackDB.open(db);
  store.openRound({
    source: 'pairs',
    input: pairsFile,
    pairs: [0, 1].map((k) => ({ line: k + 1, id: null, prompt: `Q${k + 1}`, responseA: `x${k + 1}`, responseB: `y${k + 1}`, sourceA: null, sourceB: null })),
  });
  const server = await startServer({ store, port: 0 });
  try {
    for (const choice of ['right', 'tie']) {
      const item = (await request(new URL('/api/next', server.url).href, { token })).body.item;
      assert.equal((await request(new URL('/api/label', server.url).href, { method: 'POST', token, json: { assignmentId: item.assignmentId, choice } })).status, 200);
    }
  } finally {
    await server.close();
    store.close();
  }
  const o = capture(),
    e = capture();
  const prefs = join(dir, 'prefs.jsonl');
  assert.equal(await labelMain(['export', '--db', db, '--out', prefs], o.stream, e.stream), 0);
  assert.match(e.text(), /wrote 1 preference pairs to .*prefs\.jsonl; left out 1 ties, 0 both-bad, 0 pairs with two identical responses, 0 pairs whose annotators disagreed/);
  assert.equal(readFileSync(prefs, 'utf8').trim().split('\n').length, 1);
  const s = capture();
  assert.equal(await labelMain(['stats', '--db', db], s.stream, s.stream), 0);
  assert.match(s.text(), /1\s+dana\s+2\s+[01]\s+[01]\s+1\s+0/);
  assert.match(s.text(), /position bias: the left response won [01] of 1 decisive labels/);
  const j = capture();
  assert.equal(await labelMain(['stats', '--db', db, '--json'], j.stream, j.stream), 0);
  assert.equal(JSON.parse(j.text()).overall.labels, 2);
  const bad = capture();
  assert.equal(await labelMain(['export', '--db', db, '--out', prefs, '--round', '7'], bad.stream, bad.stream), 2);
  assert.match(bad.text(), /has no round 7/);
});
