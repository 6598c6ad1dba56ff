// Batches: right padding, the shifted loss mask on a hand-computed example, completion-only / assistant-only
// loss, preference layouts (interleaved and halves), padding options, left-padded prompts, packing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collatePreference, collatePrompts, collateSequences, packSequences, type PreferenceExample, type PromptExample, type SequenceExample } from '../../src/data/index.js';
import { arr } from './helpers.js';

const src = { file: 't', line: 1 };
function seq(ids: number[], mask: number[], assistant?: number[]): SequenceExample {
  const e: SequenceExample = { kind: 'sequence', ids: Int32Array.from(ids), completionMask: Uint8Array.from(mask), promptLength: mask.indexOf(1), source: src, truncated: false };
  if (assistant) e.assistantMask = Uint8Array.from(assistant);
  return e;
}

test('shifted loss mask and right padding, by hand', () => {
  const b = collateSequences([seq([10, 11, 12, 13, 14], [0, 0, 1, 1, 1]), seq([20, 21, 22], [0, 1, 1])], { padId: 99 });
  assert.deepEqual([b.B, b.T], [2, 5]);
  assert.deepEqual(arr(b.ids), [10, 11, 12, 13, 14, 20, 21, 22, 99, 99]);
  assert.deepEqual(arr(b.attentionMask), [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  // lossMask[b, t] = completion_mask[b, t + 1]; the last real position and padding are 0
  assert.deepEqual(arr(b.lossMask), [0, 1, 1, 1, 0, 1, 1, 0, 0, 0]);
  assert.deepEqual(arr(b.lengths), [5, 3]);
  assert.deepEqual(arr(b.targets), [11, 12, 13, 14, 99, 21, 22, 99, 99, 99]);
  // loss on everything (completionOnlyLoss false): every next token that is real
  const all = collateSequences([seq([10, 11, 12, 13, 14], [0, 0, 1, 1, 1]), seq([20, 21, 22], [0, 1, 1])], { padId: 99, completionOnlyLoss: false });
  assert.deepEqual(arr(all.lossMask), [1, 1, 1, 1, 0, 1, 1, 0, 0, 0]);
  // padTo / padToMultipleOf
  const fixed = collateSequences([seq([1, 2, 3], [0, 1, 1])], { padId: 0, padTo: 6, padToMultipleOf: 4 });
  assert.equal(fixed.T, 8);
  assert.deepEqual(arr(fixed.lossMask), [1, 1, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => collateSequences([seq([1, 2, 3], [0, 1, 1])], { padId: 0, padTo: 2 }), /padTo 2 is shorter than the longest row \(3 tokens\)/);
});

test('assistant-only loss uses the assistant mask (and the completion mask when both apply)', () => {
  const e = seq([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 0, 1]);
  const b = collateSequences([e], { padId: 0, assistantOnlyLoss: true });
  assert.deepEqual(arr(b.lossMask), [0, 1, 1, 0, 1, 0]);
  const pc = seq([1, 2, 3, 4], [0, 0, 0, 1], [0, 0, 1, 1]);
  assert.deepEqual(arr(collateSequences([pc], { padId: 0, assistantOnlyLoss: true }).lossMask), [0, 0, 1, 0]);
  assert.deepEqual(arr(collateSequences([pc], { padId: 0, assistantOnlyLoss: true, completionOnlyLoss: false }).lossMask), [0, 1, 1, 0]);
  assert.throws(() => collateSequences([seq([1, 2], [1, 1])], { padId: 0, assistantOnlyLoss: true }), /assistantOnlyLoss needs assistant masks, but example 0 \(t:1\) has none/);
});

test('preference batches: rows [chosen0, rejected0, chosen1, rejected1] or halves, prompt shared, loss on completions', () => {
  const pair = (p: number[], c: number[], r: number[]): PreferenceExample => ({
    kind: 'preference',
    promptIds: Int32Array.from(p),
    chosenIds: Int32Array.from(c),
    rejectedIds: Int32Array.from(r),
    source: src,
    truncated: false,
  });
  const ex = [pair([1, 2], [3, 4], [5]), pair([6], [7], [8, 9, 10])];
  const b = collatePreference(ex, { padId: 0 });
  assert.deepEqual([b.B, b.T, b.pairs, b.layout], [4, 4, 2, 'interleaved']);
  assert.deepEqual(arr(b.ids), [1, 2, 3, 4, /**/ 1, 2, 5, 0, /**/ 6, 7, 0, 0, /**/ 6, 8, 9, 10]);
  assert.deepEqual(arr(b.attentionMask), [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual(arr(b.lossMask), [0, 1, 1, 0, /**/ 0, 1, 0, 0, /**/ 1, 0, 0, 0, /**/ 1, 1, 1, 0]);
  assert.deepEqual(arr(b.chosenRows), [0, 2]);
  assert.deepEqual(arr(b.rejectedRows), [1, 3]);
  assert.deepEqual(arr(b.promptLengths), [2, 2, 1, 1]);
  assert.deepEqual(arr(b.lengths), [4, 3, 2, 4]);
  const h = collatePreference(ex, { padId: 0, layout: 'halves' });
  assert.deepEqual(arr(h.ids), [1, 2, 3, 4, /**/ 6, 7, 0, 0, /**/ 1, 2, 5, 0, /**/ 6, 8, 9, 10]);
  assert.deepEqual(arr(h.chosenRows), [0, 1]);
  assert.deepEqual(arr(h.rejectedRows), [2, 3]);
  assert.deepEqual(arr(h.lossMask), [0, 1, 1, 0, /**/ 1, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 1, 1, 1, 0]);
});

test('prompt batches: right or left padding', () => {
  const p = (ids: number[]): PromptExample => ({ kind: 'prompt', promptIds: Int32Array.from(ids), prompt: '', promptText: '', source: src, truncated: false });
  const r = collatePrompts([p([1, 2, 3]), p([4])], { padId: 9 });
  assert.deepEqual(arr(r.ids), [1, 2, 3, 4, 9, 9]);
  const l = collatePrompts([p([1, 2, 3]), p([4])], { padId: 9, side: 'left' });
  assert.deepEqual(arr(l.ids), [1, 2, 3, 9, 9, 4]);
  assert.deepEqual(arr(l.attentionMask), [1, 1, 1, 0, 0, 1]);
  assert.deepEqual(arr(l.lengths), [3, 1]);
});

test('packing: examples concatenated into fixed rows, masks travel with tokens, the short last row is kept', () => {
  const ex = [seq([1, 2, 3], [0, 1, 1]), seq([4, 5, 6, 7, 8], [0, 0, 1, 1, 1]), seq([9, 10], [1, 1])];
  const rows = packSequences(ex, 4);
  assert.deepEqual(
    rows.map((r) => arr(r.ids)),
    [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10],
    ],
  );
  assert.deepEqual(
    rows.map((r) => arr(r.completionMask)),
    [
      [0, 1, 1, 0],
      [0, 1, 1, 1],
      [1, 1],
    ],
  );
  assert.deepEqual(
    rows.map((r) => arr(r.docStarts)),
    [[0, 3], [], [0]],
  );
  const b = collateSequences(rows, { padId: 0 });
  assert.deepEqual(arr(b.lossMask), [1, 1, 0, 0, /**/ 1, 1, 1, 0, /**/ 1, 0, 0, 0]);
  // no token is lost or invented
  assert.deepEqual(
    rows.flatMap((r) => arr(r.ids)),
    ex.flatMap((e) => arr(e.ids)),
  );
  const withA = packSequences([seq([1, 2], [1, 1], [0, 1]), seq([3], [1], [1])], 2);
  assert.deepEqual(
    withA.map((r) => arr(r.assistantMask!)),
    [[0, 1], [1]],
  );
  assert.throws(() => packSequences([seq([1], [1], [1]), seq([2], [1])], 2), /1 of 2 examples have assistant masks/);
  assert.throws(() => packSequences(ex, 0), /seqLength must be a positive integer/);
});
