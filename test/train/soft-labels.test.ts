// Soft labels (the probability that chosen is better, from AI feedback or annotator agreement): the reward
// model's Bradley–Terry cross-entropy against p and DPO's per-pair label smoothing ε = 1 − p, against values and
// gradients computed by hand; and the `soft_label` column reaching both trainers through their data loaders.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { padTokenId } from '../../src/data/index.js';
import { Tensor, tidy } from '../../src/engine/tensor.js';
import { bradleyTerryLoss } from '../../src/train/bradley-terry.js';
import { DPOConfig, DPOTrainer, loadDPOData } from '../../src/train/dpo.js';
import { dpoLoss } from '../../src/train/losses.js';
import { RewardConfig, loadRewardData } from '../../src/train/reward.js';
import { tinyGpt2, wordTokenizer } from './helpers.js';

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('soft Bradley–Terry: −p·log σ(d) − (1 − p)·log σ(−d), gradient (σ(d) − p)/N', () => {
  const rc = [1.2, -0.3, 0.5, 2.0],
    rr = [0.2, 0.4, 0.5, -1.0],
    p = [0.9, 0.6, 0.5, 1.0];
  tidy(() => {
    const c = Tensor.param(Tensor.from(rc), 'c'),
      r = Tensor.param(Tensor.from(rr), 'r');
    const loss = bradleyTerryLoss(c, r, { softLabel: p });
    let want = 0;
    for (let i = 0; i < 4; i++) {
      const d = rc[i]! - rr[i]!;
      want += (-p[i]! * Math.log(sig(d)) - (1 - p[i]!) * Math.log(sig(-d))) / 4;
    }
    close(loss.item(), want);
    loss.backward();
    const gc = c.grad!.toArray(),
      gr = r.grad!.toArray();
    for (let i = 0; i < 4; i++) {
      const g = (sig(rc[i]! - rr[i]!) - p[i]!) / 4;
      close(gc[i]!, g);
      close(gr[i]!, -g);
    }
    // p = 1 everywhere is the ordinary loss
    const hard = bradleyTerryLoss(Tensor.from(rc), Tensor.from(rr)).item();
    close(bradleyTerryLoss(Tensor.from(rc), Tensor.from(rr), { softLabel: [1, 1, 1, 1] }).item(), hard);
  });
  assert.throws(() => bradleyTerryLoss(Tensor.from([1]), Tensor.from([0]), { softLabel: [1.5] }), /not a probability/);
});

test('DPO with per-pair label smoothing ε_i: the value and dL/dh = β(σ(βh) − (1 − ε_i))/N, for sigmoid and robust', () => {
  const pc = [-3.0, -5.5, -2.25],
    pr = [-4.0, -5.0, -7.5],
    rc = [-3.5, -5.0, -3.0],
    rr = [-3.75, -5.25, -5.5];
  const eps = [0.1, 0.4, 0];
  const beta = 0.3;
  for (const lossType of ['sigmoid', 'robust'] as const) {
    tidy(() => {
      const c = Tensor.param(Tensor.from(pc), 'c'),
        r = Tensor.param(Tensor.from(pr), 'r');
      const { loss } = dpoLoss(c, r, Tensor.from(rc), Tensor.from(rr), { beta, lossType, labelSmoothing: eps });
      let want = 0;
      const dh: number[] = [];
      for (let i = 0; i < 3; i++) {
        const h = pc[i]! - rc[i]! - (pr[i]! - rr[i]!),
          e = eps[i]!;
        if (lossType === 'sigmoid') {
          want += (-(1 - e) * Math.log(sig(beta * h)) - e * Math.log(sig(-beta * h))) / 3;
          dh.push((beta * (sig(beta * h) - (1 - e))) / 3);
        } else {
          want += (-(1 - e) * Math.log(sig(beta * h)) + e * Math.log(sig(-beta * h))) / (1 - 2 * e) / 3;
          dh.push((beta * (-(1 - e) * (1 - sig(beta * h)) - e * sig(beta * h))) / (1 - 2 * e) / 3);
        }
      }
      close(loss.item(), want);
      loss.backward();
      const gc = c.grad!.toArray(),
        gr = r.grad!.toArray();
      for (let i = 0; i < 3; i++) {
        close(gc[i]!, dh[i]!);
        close(gr[i]!, -dh[i]!);
      }
    });
  }
  assert.throws(
    () => dpoLoss(Tensor.from([1]), Tensor.from([0]), Tensor.from([0]), Tensor.from([0]), { beta: 0.1, lossType: 'ipo', labelSmoothing: [0.1] }),
    /per-pair label smoothing applies to the sigmoid and robust losses/,
  );
});

test('the soft_label column reaches the reward trainer and DPO (ε = 1 − soft_label); a partial column is refused', async () => {
  const tok = wordTokenizer();
  const rows = [
    { prompt: 'a b =', chosen: ' x x', rejected: ' y', soft_label: 0.75 },
    { prompt: 'c =', chosen: ' x a', rejected: ' y y', soft_label: 0.6 },
  ];
  const rm = await loadRewardData(rows, tok, RewardConfig.resolve({}));
  assert.deepEqual(
    rm.map((e) => e.softLabel),
    [0.75, 0.6],
  );
  const args = DPOConfig.resolve({ output_dir: '/nonexistent' });
  const data = await loadDPOData(rows, tok, args);
  const t = new DPOTrainer({ args, model: tinyGpt2(tok.vocabSize, 1), trainDataset: data, padTokenId: padTokenId(tok) });
  const b = t.collate(data, Int32Array.from([0, 1]), 'train');
  assert.deepEqual(Array.from(b.smoothing!), [0.25, 0.4].map(Math.fround));
  t.dispose();
  await assert.rejects(
    loadRewardData([rows[0]!, { prompt: 'c =', chosen: ' x', rejected: ' y' }], tok, RewardConfig.resolve({})),
    /<memory>:2: soft_label: missing \(other records have a soft_label column; give every record one\)/,
  );
  await assert.rejects(loadDPOData([{ ...rows[0]!, soft_label: 1.2 }], tok, args), /<memory>:1: soft_label: expected a probability in \[0, 1\], got 1.2/);
});
