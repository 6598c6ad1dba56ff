// The epoch iterator: seeded permutations that cover the dataset each epoch, and a saved {epoch, index} state
// that resumes with exactly the next batch (also across epoch ends and through JSON, as a checkpoint stores it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EpochSampler, type SamplerState } from '../../src/data/index.js';
import { arr } from './helpers.js';

const draw = (s: EpochSampler, n: number) =>
  Array.from({ length: n }, () => {
    const b = s.next();
    return { epoch: b.epoch, index: b.index, indices: arr(b.indices) };
  });

test('each epoch is a seeded permutation of the dataset, cut into batches', () => {
  const s = new EpochSampler(10, { batchSize: 4, seed: 7 });
  assert.equal(s.batchesPerEpoch, 3);
  const batches = draw(s, 6);
  assert.deepEqual(
    batches.map((b) => [b.epoch, b.index, b.indices.length]),
    [
      [0, 0, 4],
      [0, 1, 4],
      [0, 2, 2],
      [1, 0, 4],
      [1, 1, 4],
      [1, 2, 2],
    ],
  );
  for (const e of [0, 1]) {
    const seen = batches
      .filter((b) => b.epoch === e)
      .flatMap((b) => b.indices)
      .sort((x, y) => x - y);
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }
  const e0 = batches.filter((b) => b.epoch === 0).flatMap((b) => b.indices);
  const e1 = batches.filter((b) => b.epoch === 1).flatMap((b) => b.indices);
  assert.notDeepEqual(e0, e1);
  assert.notDeepEqual(e0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // same seed: same order; another seed: another order
  assert.deepEqual(draw(new EpochSampler(10, { batchSize: 4, seed: 7 }), 6), batches);
  assert.notDeepEqual(draw(new EpochSampler(10, { batchSize: 4, seed: 8 }), 3), batches.slice(0, 3));
  // no shuffle: dataset order; dropLast drops the short batch
  assert.deepEqual(
    draw(new EpochSampler(5, { batchSize: 2, shuffle: false }), 3).map((b) => b.indices),
    [[0, 1], [2, 3], [4]],
  );
  assert.deepEqual(
    draw(new EpochSampler(5, { batchSize: 2, shuffle: false, dropLast: true }), 3).map((b) => b.indices),
    [
      [0, 1],
      [2, 3],
      [0, 1],
    ],
  );
  assert.throws(() => new EpochSampler(3, { batchSize: 4, dropLast: true }), /no batch can be made from 3 examples with batchSize 4 and dropLast/);
});

test('permutations are unbiased enough: every position takes every item about equally often', () => {
  const n = 5,
    epochs = 4000;
  const s = new EpochSampler(n, { batchSize: n, seed: 1 });
  const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let e = 0; e < epochs; e++) s.permutation(e).forEach((item, pos) => counts[pos][item]++);
  for (const row of counts) for (const c of row) assert.ok(Math.abs(c - epochs / n) < 0.1 * (epochs / n), `count ${c} far from ${epochs / n}`);
});

test('resuming from a saved state gives exactly the batches that would have come next', () => {
  for (const stopAt of [0, 1, 5, 6, 7, 13]) {
    const a = new EpochSampler(23, { batchSize: 4, seed: 1234 });
    draw(a, stopAt);
    const saved = JSON.parse(JSON.stringify(a.state())) as SamplerState; // as a checkpoint stores it
    const expected = draw(a, 12);
    const b = new EpochSampler(23, { batchSize: 4, seed: 1234 });
    b.restore(saved);
    assert.deepEqual([b.epoch, b.index], [saved.epoch, saved.index]);
    assert.deepEqual(draw(b, 12), expected, `resumed after ${stopAt} batches`);
  }
  const a = new EpochSampler(23, { batchSize: 4, seed: 1 });
  assert.throws(() => new EpochSampler(24, { batchSize: 4, seed: 1 }).restore(a.state()), /made with size 23, but this sampler has size 24/);
  assert.throws(() => new EpochSampler(23, { batchSize: 4, seed: 2 }).restore(a.state()), /seed 1.*seed 2/);
  assert.throws(() => a.restore({ ...a.state(), index: 6 }), /bad position epoch 0, index 6 \(batches per epoch: 6\)/);
});
