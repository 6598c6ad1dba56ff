// Tokenisation rules: no double BOS (fixture without BOS, a tokenizer whose post-processor adds BOS, a template
// that renders BOS), EOS appended to completions and kept in the loss even when pad = EOS, the preference prompt
// tokenised once and shared, conversational prompt/completion split with the prefix check, assistant masks, and
// the truncation modes (hand-computed plans, then through the tokenizer).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DataError,
  RecordTokenizer,
  collateSequences,
  leadingSpecialIds,
  loadDataset,
  loadPreferenceDataset,
  loadPromptDataset,
  loadSftDataset,
  padTokenId,
  planTruncation,
  type PreferenceExample,
  type SequenceExample,
} from '../../src/data/index.js';
import { BOS_TEMPLATE, EOS_TEMPLATE, arr, bosTokenizer, count, fixtureTokenizer } from './helpers.js';

const u = (content: string) => ({ role: 'user', content });
const a = (content: string) => ({ role: 'assistant', content });
const enc = (tok: ReturnType<typeof fixtureTokenizer>, s: string) => tok.encode(s, { addSpecialTokens: false });

test('fixture tokenizer (GPT-2 style, bos = eos): no BOS added, EOS appended once', async () => {
  const tok = fixtureTokenizer();
  assert.deepEqual(leadingSpecialIds(tok), []);
  assert.equal(tok.eosTokenId, 0);
  assert.equal(padTokenId(tok), 0); // no pad token: EOS
  const [lm, lmEos] = (await loadSftDataset([{ text: 'Hello world' }, { text: 'Hello world<|endoftext|>' }], tok)).examples;
  const pc = (await loadSftDataset([{ prompt: 'The sky is', completion: ' blue.' }], tok)).examples[0];
  assert.deepEqual(arr(lm.ids), [...enc(tok, 'Hello world'), 0]);
  assert.deepEqual(arr(lmEos.ids), arr(lm.ids)); // already ends with EOS: not doubled
  assert.deepEqual(arr(lm.completionMask), new Array(lm.ids.length).fill(1));
  const p = enc(tok, 'The sky is'),
    c = enc(tok, ' blue.');
  assert.deepEqual(arr(pc.ids), [...p, ...c, 0]);
  assert.deepEqual(arr(pc.completionMask), [...p.map(() => 0), ...c.map(() => 1), 1]);
  assert.equal(pc.promptLength, p.length);
});

test('tokenizer that adds BOS: exactly one BOS whether or not the text or the template already has it', async () => {
  const tok = bosTokenizer();
  const bos = tok.bosTokenId!,
    eos = tok.eosTokenId!;
  assert.notEqual(bos, eos);
  assert.deepEqual(leadingSpecialIds(tok), [bos]);
  const d = await loadSftDataset([{ text: 'Hello world' }, { text: '<s>Hello world' }], tok);
  const body = enc(tok, 'Hello world');
  assert.deepEqual(arr(d.examples[0].ids), [bos, ...body, eos]);
  assert.deepEqual(arr(d.examples[1].ids), [bos, ...body, eos]);
  // the template does not render BOS: added once; the template renders {{ bos_token }}: not added again
  for (const tmpl of [undefined, BOS_TEMPLATE]) {
    const t = tmpl ? bosTokenizer(tmpl) : tok;
    const conv = await loadSftDataset([{ messages: [u('Sky?'), a('Blue.')] }], t);
    const ids = conv.examples[0].ids;
    assert.equal(ids[0], bos);
    assert.equal(count(ids, bos), 1, `template ${tmpl ? 'with' : 'without'} BOS`);
    const pref = await loadPreferenceDataset([{ prompt: [u('Sky?')], chosen: [a('Blue.')], rejected: [a('Green.')] }], t);
    const e = pref.examples[0];
    assert.equal(e.promptIds[0], bos);
    assert.equal(count(e.promptIds, bos) + count(e.chosenIds, bos) + count(e.rejectedIds, bos), 1);
    const pr = await loadPromptDataset([{ prompt: [u('Sky?')] }], t);
    assert.deepEqual(arr(pr.examples[0].promptIds), arr(e.promptIds));
  }
  // addBos: false turns it off; addBos: true forces it on a tokenizer that adds none
  const off = await loadSftDataset([{ text: 'Hello world' }], tok, { addBos: false });
  assert.deepEqual(arr(off.examples[0].ids), [...body, eos]);
  const fx = fixtureTokenizer();
  const on = await loadSftDataset([{ text: 'Hello world' }], fx, { addBos: true });
  assert.deepEqual(arr(on.examples[0].ids), [0, ...enc(fx, 'Hello world'), 0]);
});

test('EOS: appended to completions, not doubled, kept in the loss when pad = EOS', async () => {
  const tok = bosTokenizer();
  const bos = tok.bosTokenId!,
    eos = tok.eosTokenId!;
  assert.equal(padTokenId(tok), eos); // pad = EOS
  const d = await loadSftDataset(
    [
      { prompt: 'The sky is', completion: ' blue.' },
      { prompt: 'The sky is', completion: ' blue.</s>' },
    ],
    tok,
  );
  const [x, y] = d.examples;
  const p = enc(tok, 'The sky is'),
    c = enc(tok, ' blue.');
  assert.deepEqual(arr(x.ids), [bos, ...p, ...c, eos]);
  assert.deepEqual(arr(y.ids), arr(x.ids));
  const b = collateSequences([x, { ...x, ids: x.ids.subarray(0, 3), completionMask: x.completionMask.subarray(0, 3) }], { padId: padTokenId(tok) });
  const T = b.T,
    n = x.ids.length;
  assert.equal(T, n);
  // the prediction of EOS (made at position n - 2) counts; the pad ids of row 1 equal EOS but count for nothing
  assert.equal(b.lossMask[n - 2], 1);
  assert.equal(b.ids[n - 1], eos);
  assert.equal(b.ids[T + 3], eos);
  assert.deepEqual(arr(b.lossMask.subarray(T, 2 * T)), new Array(T).fill(0));
  assert.deepEqual(arr(b.attentionMask.subarray(T, 2 * T)), [1, 1, 1, ...new Array(T - 3).fill(0)]);
  // conversational: the fixture's template ends turns with <|end|>\n: EOS appended; a template that closes assistant
  // turns with EOS: not appended again
  const conv = { prompt: [u('Sky?')], completion: [a('Blue.')] };
  const plain = await loadSftDataset([conv], tok);
  assert.equal(plain.examples[0].ids.at(-1), eos);
  assert.equal(count(plain.examples[0].ids, eos), 1);
  const closing = await loadSftDataset([conv], bosTokenizer(EOS_TEMPLATE));
  const ids = closing.examples[0].ids;
  assert.equal(count(ids, eos), 1);
  assert.deepEqual(arr(ids.subarray(ids.length - 2)), [eos, ...enc(tok, '\n')]);
  // addEos: false
  const none = await loadSftDataset([{ text: 'Hello' }], tok, { addEos: false });
  assert.deepEqual(arr(none.examples[0].ids), [bos, ...enc(tok, 'Hello')]);
});

test('preference: the prompt is tokenised once and shared by chosen and rejected', async () => {
  const tok = fixtureTokenizer();
  const s = (await loadPreferenceDataset([{ prompt: 'The sky is', chosen: ' blue.', rejected: ' green, or grey when it rains.' }], tok)).examples[0];
  const c = (await loadPreferenceDataset([{ prompt: [u('What color is the sky?')], chosen: [a('It is blue.')], rejected: [a('It is green.')] }], tok)).examples[0];
  assert.deepEqual(arr(s.promptIds), enc(tok, 'The sky is'));
  assert.deepEqual(arr(s.chosenIds), [...enc(tok, ' blue.'), 0]);
  assert.deepEqual(arr(s.rejectedIds), [...enc(tok, ' green, or grey when it rains.'), 0]);
  const promptText = '<|user|>\nWhat color is the sky?<|end|>\n<|assistant|>\n';
  assert.deepEqual(arr(c.promptIds), enc(tok, promptText));
  assert.equal(tok.decode(c.chosenIds), 'It is blue.<|end|>\n<|endoftext|>');
  assert.equal(tok.decode(c.rejectedIds), 'It is green.<|end|>\n<|endoftext|>');
  // a prompt ending with an assistant message is continued, not closed (TRL's rule)
  const cont = await loadPromptDataset([{ prompt: [u('Sky?'), a('It is')] }], tok);
  assert.equal(cont.examples[0].promptText, '<|user|>\nSky?<|end|>\n<|assistant|>\nIt is');
});

test('conversational completion: a template that breaks the prompt-prefix property is a clear error', async () => {
  const tok = fixtureTokenizer();
  // renders a marker before the LAST message, so the prompt alone renders differently from prompt + completion
  const bad = "{% for m in messages %}{% if loop.last %}[LAST]{% endif %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
  const rows = [{ prompt: [u('Sky?')], completion: [a('Blue.')] }];
  await assert.rejects(loadSftDataset(rows, tok, { chatTemplate: bad }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.code, 'template');
    assert.match(e.message, /^<memory>:1: completion: the chat template's rendering of prompt \+ completion does not start with its rendering of the prompt/);
    return true;
  });
  const pref = [{ prompt: [u('Sky?')], chosen: [a('Blue.')], rejected: [a('Green.')] }];
  await assert.rejects(loadPreferenceDataset(pref, tok, { chatTemplate: bad }), /<memory>:1: chosen: the chat template's rendering/);
  const failing = "{{ raise_exception('no system messages') }}";
  await assert.rejects(loadSftDataset(rows, tok, { chatTemplate: failing }), /<memory>:1: prompt: the chat template failed: .*no system messages/);
});

test('conversational language modelling: assistant masks from the tokenizer (EOS appended after an assistant turn is in it)', async () => {
  const tok = fixtureTokenizer();
  const messages = [u('What color is the sky?'), a('It is blue.'), u('Sure?'), a('Yes.')];
  const d = await loadSftDataset([{ messages }], tok, { assistantMasks: true });
  const e = d.examples[0];
  const ref = tok.applyChatTemplate(messages, { returnAssistantMask: true });
  assert.deepEqual(arr(e.ids), [...ref.inputIds, 0]);
  assert.deepEqual(arr(e.assistantMask!), [...ref.assistantMask, 1]);
  assert.equal(tok.decode(e.ids.filter((_, i) => e.assistantMask![i] === 1)), 'It is blue.<|end|>\nYes.<|end|>\n<|endoftext|>');
  assert.deepEqual(arr(e.completionMask), new Array(e.ids.length).fill(1));
  // without the option no mask is computed; a conversation without assistant turns cannot give assistant masks
  assert.equal((await loadSftDataset([{ messages }], tok)).examples[0].assistantMask, undefined);
  await assert.rejects(loadSftDataset([{ messages: [u('hi')] }], tok, { assistantMasks: true }), /<memory>:1: messages: assistant masks were asked for, but no token is marked/);
  // BOS prepended by a BOS tokenizer gets mask 0
  const bt = bosTokenizer();
  const b = (await loadSftDataset([{ messages }], bt, { assistantMasks: true })).examples[0];
  assert.equal(b.ids[0], bt.bosTokenId);
  assert.equal(b.assistantMask![0], 0);
  assert.equal(b.assistantMask!.length, b.ids.length);
});

test('truncation plans, computed by hand', () => {
  const P = (ps: number, pe: number, cs: Array<[number, number]>, truncated = true) => ({ prompt: { start: ps, end: pe }, completions: cs.map(([start, end]) => ({ start, end })), truncated });
  // prompt 5 + completion 4, max_length 7
  assert.deepEqual(planTruncation(5, [4], { maxLength: 7, truncationMode: 'keep_start' }), P(0, 5, [[0, 2]]));
  assert.deepEqual(planTruncation(5, [4], { maxLength: 7, truncationMode: 'keep_end' }), P(2, 5, [[0, 4]]));
  assert.deepEqual(planTruncation(5, [4], { maxLength: 9 }), P(0, 5, [[0, 4]], false));
  // the prompt fills max_length: keep_start leaves no completion token; keep_end drops the prompt start
  assert.deepEqual(planTruncation(5, [4], { maxLength: 3, truncationMode: 'keep_start' }), P(0, 3, [[0, 0]]));
  assert.deepEqual(planTruncation(5, [4], { maxLength: 3, truncationMode: 'keep_end' }), P(5, 5, [[1, 4]]));
  // preference: the prompt is cut once for both completions (by the longer one)
  assert.deepEqual(
    planTruncation(6, [3, 5], { maxLength: 8, truncationMode: 'keep_start' }),
    P(0, 6, [
      [0, 2],
      [0, 2],
    ]),
  );
  assert.deepEqual(
    planTruncation(6, [3, 5], { maxLength: 8, truncationMode: 'keep_end' }),
    P(3, 6, [
      [0, 3],
      [0, 5],
    ]),
  );
  // max_prompt_length keeps the prompt's start or end; max_completion_length keeps completions' starts
  assert.deepEqual(planTruncation(6, [3], { maxPromptLength: 4, truncationMode: 'keep_start' }), P(0, 4, [[0, 3]]));
  assert.deepEqual(planTruncation(6, [3], { maxPromptLength: 4, truncationMode: 'keep_end' }), P(2, 6, [[0, 3]]));
  assert.deepEqual(
    planTruncation(6, [3, 5], { maxCompletionLength: 4 }),
    P(0, 6, [
      [0, 3],
      [0, 4],
    ]),
  );
  assert.deepEqual(planTruncation(10, [6], { maxPromptLength: 4, maxCompletionLength: 5, maxLength: 8, truncationMode: 'keep_end' }), P(7, 10, [[0, 5]]));
  // language modelling: first / last max_length tokens
  assert.deepEqual(planTruncation(0, [10], { maxLength: 4, truncationMode: 'keep_start' }), P(0, 0, [[0, 4]]));
  assert.deepEqual(planTruncation(0, [10], { maxLength: 4, truncationMode: 'keep_end' }), P(0, 0, [[6, 10]]));
  assert.throws(() => new RecordTokenizer(fixtureTokenizer(), { maxLength: 0 }), /max_length must be an integer >= 1/);
  assert.throws(() => new RecordTokenizer(fixtureTokenizer(), { truncationMode: 'left' as 'keep_end' }), /truncation_mode must be 'keep_start' or 'keep_end'/);
});

test('truncation through the tokenizer: masks follow the tokens, the prompt stays shared, rows emptied are reported', async () => {
  const tok = fixtureTokenizer();
  const prompt = 'one two three four five six',
    completion = ' seven eight nine';
  const p = enc(tok, prompt),
    c = [...enc(tok, completion), 0];
  const rows = [{ prompt, completion }];
  const L = p.length + c.length;
  const ks = (await loadSftDataset(rows, tok, { maxLength: L - 2, truncationMode: 'keep_start' })).examples[0];
  assert.deepEqual(arr(ks.ids), [...p, ...c].slice(0, L - 2));
  assert.deepEqual(arr(ks.completionMask), [...p.map(() => 0), ...c.map(() => 1)].slice(0, L - 2));
  assert.equal(ks.truncated, true);
  const ke = (await loadSftDataset(rows, tok, { maxLength: L - 2, truncationMode: 'keep_end' })).examples[0];
  assert.deepEqual(arr(ke.ids), [...p, ...c].slice(2));
  assert.equal(ke.promptLength, p.length - 2);
  // a prompt longer than max_length leaves nothing to learn: an error naming the row (or a counted skip)
  await assert.rejects(loadSftDataset(rows, tok, { maxLength: p.length, truncationMode: 'keep_start' }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.code, 'truncated');
    assert.match(e.message, new RegExp(`^<memory>:1: completion: no completion token is left after truncation \\(prompt of ${p.length} tokens, max_length ${p.length}, truncation_mode keep_start\\)`));
    return true;
  });
  const pref = await loadPreferenceDataset([{ prompt, chosen: ' seven', rejected: ' seven eight nine ten' }], tok, { maxLength: p.length + 2, truncationMode: 'keep_end' });
  const e: PreferenceExample = pref.examples[0];
  const r = [...enc(tok, ' seven eight nine ten'), 0];
  // the longer completion (rejected) fits whole; the prompt loses its start by the same amount for both
  assert.deepEqual(arr(e.rejectedIds), r);
  assert.deepEqual(arr(e.promptIds), p.slice(r.length - 2));
  assert.deepEqual(arr(e.chosenIds), [...enc(tok, ' seven'), 0]);
  assert.equal(pref.report.truncated, 1);
  // max_prompt_length on prompts for generation
  const pr = await loadPromptDataset([{ prompt }], tok, { maxPromptLength: 3, truncationMode: 'keep_end' });
  assert.deepEqual(arr(pr.examples[0].promptIds), p.slice(-3));
  // language modelling keep_end keeps the last tokens (the EOS included)
  const lm: SequenceExample = (await loadSftDataset([{ text: prompt }], tok, { maxLength: 3, truncationMode: 'keep_end' })).examples[0];
  assert.deepEqual(arr(lm.ids), [...p, 0].slice(-3));
  // truncation that makes chosen and rejected identical is reported like an identical pair
  await assert.rejects(
    loadPreferenceDataset([{ prompt, chosen: ' seven eight', rejected: ' seven nine' }], tok, { maxCompletionLength: 1 }),
    /<memory>:1: rejected: chosen and rejected are identical after truncation/,
  );
  const all = await loadDataset([{ prompt, completion }], tok, { maxPromptLength: 2, truncationMode: 'keep_start' });
  assert.equal(all.report.truncated, 1);
  // overlong: 'reject' (a reward model reads its score at the last token, so cutting the end would mislead it)
  const pairs = [
    { prompt, chosen: ' seven', rejected: ' eight' },
    { prompt: 'a', chosen: ' b', rejected: ' c' },
  ];
  await assert.rejects(
    loadPreferenceDataset(pairs, tok, { maxLength: 5, overlong: 'reject' }),
    new RegExp(
      `^DataError: <memory>:1: chosen: the row \\(prompt ${p.length} \\+ chosen ${enc(tok, ' seven').length + 1} / rejected ${enc(tok, ' eight').length + 1} tokens\\) is longer than the limits \\(max_length 5\\) and overlong is 'reject'`,
    ),
  );
  const kept = await loadPreferenceDataset(pairs, tok, { maxLength: 5, overlong: 'reject', skipInvalid: true });
  assert.deepEqual([kept.report.kept, kept.report.skipped, kept.report.truncated, kept.examples[0].source.line], [1, 1, 0, 2]);
});
