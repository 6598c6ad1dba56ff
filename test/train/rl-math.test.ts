// The pieces of the online RL trainers against numbers worked out by hand: GAE, whitening, the k1/k3 KL
// estimators, the adaptive KL controller, PPO's clipped policy and value losses (values, clip fractions and
// gradients), the leave-one-out and group-normalised baselines, GRPO's per-token loss and its aggregations,
// and RLOO's sequence-level loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/engine/tensor.js';
import { gae } from '../../src/train/rl/gae.js';
import { maskedMeanOf, maskedVarOf, maskedWhiten } from '../../src/train/rl/whiten.js';
import { AdaptiveKLController, FixedKLController, klEstimate, klPerToken } from '../../src/train/rl/kl.js';
import { aggregateTokenLoss, grpoPerTokenLoss, ppoPolicyLoss, ppoValueLoss, rlooSequenceLoss } from '../../src/train/rl/losses.js';
import { groupNormalizedAdvantages, leaveOneOutAdvantages } from '../../src/train/rl/baselines.js';
import { assertClose, tensorOf } from '../helpers/check.js';

const close = (a: number, b: number, tol = 1e-6, msg = ''): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${msg} ${a} vs ${b}`);

test('GAE matches a hand-computed example (γ = 0.9, λ = 0.8), stopping at the end of each row', () => {
  // row 0: r = [0.1, −0.2, 1.0], V = [0.5, 0.4, 0.3]
  //   δ2 = 1.0 − 0.3 = 0.7                       A2 = 0.7
  //   δ1 = −0.2 + 0.9·0.3 − 0.4 = −0.33          A1 = −0.33 + 0.72·0.7 = 0.174
  //   δ0 = 0.1 + 0.9·0.4 − 0.5 = −0.04           A0 = −0.04 + 0.72·0.174 = 0.08528
  // row 1: mask [1, 1, 0] (the episode ends at t = 1; the entries at t = 2 are ignored)
  //   δ1 = 2.0 + 0 − 0.5 = 1.5                   A1 = 1.5
  //   δ0 = 0.5 + 0.9·0.5 − 1.0 = −0.05           A0 = −0.05 + 0.72·1.5 = 1.03
  const { advantages, returns } = gae([0.1, -0.2, 1.0, 0.5, 2.0, 9.0], [0.5, 0.4, 0.3, 1.0, 0.5, 7.0], [1, 1, 1, 1, 1, 0], 2, 3, 0.9, 0.8);
  assertClose(advantages, [0.08528, 0.174, 0.7, 1.03, 1.5, 0], { rtol: 1e-12, atol: 1e-12 });
  assertClose(returns, [0.58528, 0.574, 1.0, 2.03, 2.0, 0], { rtol: 1e-12, atol: 1e-12 });
  // γ = λ = 1 with zero values: the advantage is the sum of the rewards still to come
  const mc = gae([1, 2, 3], [0, 0, 0], [1, 1, 1], 1, 3, 1, 1);
  assert.deepEqual(Array.from(mc.advantages), [6, 5, 3]);
  // λ = 0: the one-step TD error
  const td = gae([1, 2], [0.5, 0.25], [1, 1], 1, 2, 0.5, 0);
  assertClose(td.advantages, [1 + 0.5 * 0.25 - 0.5, 2 - 0.25], { atol: 1e-15 });
  assert.throws(() => gae([1], [1, 2], [1], 1, 1, 1, 1), /B·T/);
});

test('masked whitening: zero mean, unit (unbiased) variance on the selected entries; shift_mean=false keeps the mean', () => {
  const x = [1, 2, 3, 40],
    m = [1, 1, 1, 0];
  assert.equal(maskedMeanOf(x, m), 2);
  assert.equal(maskedVarOf(x, m), 1); // ((−1)² + 0 + 1²)/(3 − 1)
  assert.equal(maskedVarOf(x, m, false), 2 / 3);
  const s = 1 / Math.sqrt(1 + 1e-8);
  assertClose(maskedWhiten(x, m), [-s, 0, s, 0], { atol: 1e-15 });
  assertClose(maskedWhiten(x, m, false), [2 - s, 2, 2 + s, 0], { atol: 1e-15 });
  assert.throws(() => maskedVarOf([1, 2], [1, 0]), /at least 2/);
});

test('k1 and k3 KL estimators', () => {
  // log π = −1, log π_ref = −1.5: log r = −0.5, k1 = 0.5, k3 = e^−0.5 − 1 + 0.5
  close(klEstimate(-1, -1.5, 'k1'), 0.5, 1e-15);
  close(klEstimate(-1, -1.5, 'k3'), Math.exp(-0.5) - 0.5, 1e-15);
  close(klEstimate(-1, -1.5, 'k3'), 0.10653065971263342, 1e-14);
  // log r = 1: k1 = −1 (negative), k3 = e − 2 (never negative)
  close(klEstimate(-2, -1, 'k1'), -1, 1e-15);
  close(klEstimate(-2, -1, 'k3'), Math.E - 2, 1e-14);
  assert.equal(klEstimate(-0.7, -0.7, 'k3'), 0);
  assert.deepEqual(Array.from(klPerToken([-1, -2, -3], [-1.5, -1, 0], [1, 1, 0], 'k1')), [0.5, -1, 0]);
  // both are unbiased: averaged over samples x ~ π they approach KL(π‖π_ref)
  const p = [0.7, 0.2, 0.1],
    q = [0.4, 0.4, 0.2];
  const exact = p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0);
  const e1 = p.reduce((s, pi, i) => s + pi * klEstimate(Math.log(pi), Math.log(q[i]!), 'k1'), 0);
  const e3 = p.reduce((s, pi, i) => s + pi * klEstimate(Math.log(pi), Math.log(q[i]!), 'k3'), 0);
  close(e1, exact, 1e-14);
  close(e3, exact, 1e-14);
  assert.throws(() => klEstimate(0, 0, 'k2' as never), /k1, k3/);
});

test('adaptive KL controller follows β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon)', () => {
  const c = new AdaptiveKLController(0.1, 6, 10000);
  c.update(9, 64); // error 0.5, clipped to 0.2
  close(c.value, 0.1 * (1 + (0.2 * 64) / 10000), 1e-15);
  close(c.value, 0.100128, 1e-12);
  c.update(3, 64); // error −0.5 → −0.2
  close(c.value, 0.100128 * (1 - (0.2 * 64) / 10000), 1e-12);
  const before = c.value;
  c.update(6.6, 100); // error 0.1, inside the clip
  close(c.value, before * 1.001, 1e-12);
  c.update(6, 1000); // on target: unchanged
  close(c.value, before * 1.001, 1e-12);
  const f = new FixedKLController(0.05);
  f.update(100, 64);
  assert.equal(f.value, 0.05);
  const s = new AdaptiveKLController(1, 6, 10000);
  s.setState(c.getState());
  assert.equal(s.value, c.value);
  assert.throws(() => new AdaptiveKLController(0.1, 0, 1), /target/);
});

test('PPO clipped policy loss: value, clip fraction, approximate KL and gradient on fixed numbers', () => {
  // ratios [1, 1.5, 0.5, 1.5, (1.1 masked)], advantages [1, 1, −1, −1, −2], ε = 0.2
  //   t0: max(−1, −1) = −1                      not clipped, ∂/∂logπ = −A·ρ = −1
  //   t1: max(−1.5, −1.2) = −1.2                clipped (no gradient)
  //   t2: max(0.5, 0.8) = 0.8                   clipped (no gradient)
  //   t3: max(1.5, 1.2) = 1.5                   outside the range but unclipped: ∂ = −A·ρ = 1.5
  // loss = (−1 − 1.2 + 0.8 + 1.5)/4 = 0.025, clipfrac = 2/4
  tidy(() => {
    const lp = tensorOf([0, Math.log(1.5), Math.log(0.5), Math.log(1.5), Math.log(1.1)], [1, 5], true);
    const old = tensorOf([0, 0, 0, 0, 0], [1, 5]);
    const adv = tensorOf([1, 1, -1, -1, -2], [1, 5]);
    const mask = tensorOf([1, 1, 1, 1, 0], [1, 5]);
    const r = ppoPolicyLoss(lp, old, adv, mask, 0.2);
    close(r.loss.item(), 0.025, 1e-6, 'loss');
    assert.equal(r.clipfrac, 0.5);
    const l15 = Math.log(1.5) ** 2,
      l05 = Math.log(0.5) ** 2;
    close(r.approxkl, (0.5 * (2 * l15 + l05)) / 4, 1e-6, 'approxkl');
    close(r.approxkl, 0.10115715, 1e-6, 'approxkl number');
    close(r.ratioMean, (1 + 1.5 + 0.5 + 1.5) / 4, 1e-6, 'ratio');
    r.loss.backward();
    assertClose(lp.grad!.toArray(), [-0.25, 0, 0, 0.375, 0], { atol: 1e-7 });
  });
});

test('PPO clipped value loss: ½·max((V − R)², (V_old + clip(V − V_old) − R)²), clip fraction and gradient', () => {
  // V = [1, 0, 0.5], V_old = 0.5, R = [2, 0, 1], ε_v = 0.2
  //   t0: clipped V 0.7: max(1, 1.69) = 1.69 (clipped)   t1: clipped V 0.3: max(0, 0.09) = 0.09 (clipped)
  //   t2: inside the range: max(0.25, 0.25) = 0.25        loss = ½·(1.69 + 0.09 + 0.25)/3
  tidy(() => {
    const v = tensorOf([1, 0, 0.5], [1, 3], true);
    const r = ppoValueLoss(v, tensorOf([0.5, 0.5, 0.5], [1, 3]), tensorOf([2, 0, 1], [1, 3]), tensorOf([1, 1, 1], [1, 3]), 0.2);
    close(r.loss.item(), (0.5 * 2.03) / 3, 1e-6, 'value loss');
    close(r.clipfrac, 2 / 3, 1e-12);
    r.loss.backward();
    // only t2 moves: ½·2·(0.5 − 1)/3 = −1/6 (the tie splits the gradient between two equal branches)
    assertClose(v.grad!.toArray(), [0, 0, -1 / 6], { atol: 1e-7 });
  });
});

test('leave-one-out baseline (RLOO)', () => {
  // group [1, 2, 3, 4]: A_i = r_i − (10 − r_i)/3;  group [0, 0, 1, 1]: A_i = r_i − (2 − r_i)/3
  const a = leaveOneOutAdvantages([1, 2, 3, 4, 0, 0, 1, 1], 4);
  assertClose(a, [-2, -2 / 3, 2 / 3, 2, -2 / 3, -2 / 3, 2 / 3, 2 / 3], { atol: 1e-15 });
  // k = 2: the advantage is the difference to the sibling, r_i − r_j
  assertClose(leaveOneOutAdvantages([5, 3], 2), [2, -2], { atol: 0 });
  assert.throws(() => leaveOneOutAdvantages([1, 2, 3], 2), /groups of 2/);
  assert.throws(() => leaveOneOutAdvantages([1], 1), /at least 2/);
});

test('group-normalised advantages (GRPO): group, batch and no scaling', () => {
  const r = [1, 2, 3, 4, 0, 0, 1, 1];
  const sd1 = Math.sqrt(5 / 3),
    sd2 = Math.sqrt(1 / 3); // unbiased
  const g = groupNormalizedAdvantages(r, 4, 'group');
  assertClose(g.advantages, [-1.5, -0.5, 0.5, 1.5].map((d) => d / (sd1 + 1e-4)).concat([-0.5, -0.5, 0.5, 0.5].map((d) => d / (sd2 + 1e-4))), { rtol: 1e-12, atol: 1e-15 });
  assertClose(g.groupStd, [sd1, sd1, sd1, sd1, sd2, sd2, sd2, sd2], { rtol: 1e-12 });
  const none = groupNormalizedAdvantages(r, 4, 'none');
  assertClose(none.advantages, [-1.5, -0.5, 0.5, 1.5, -0.5, -0.5, 0.5, 0.5], { atol: 1e-15 });
  const mean = 1.5,
    sdb = Math.sqrt(r.reduce((s, v) => s + (v - mean) ** 2, 0) / 7);
  const b = groupNormalizedAdvantages(r, 4, 'batch');
  assertClose(
    b.advantages,
    none.advantages.map((d) => d / (sdb + 1e-4)),
    { rtol: 1e-12, atol: 1e-15 },
  );
  // a group of equal rewards has zero advantage
  assert.deepEqual(Array.from(groupNormalizedAdvantages([2, 2, 2], 3).advantages), [0, 0, 0]);
});

test('GRPO per-token loss with the k3 KL term, and its four aggregations', () => {
  // ratios row 0 [1.3, 0.7] (A = 1), row 1 [1, 1.1 (masked)] (A = −1), ε = 0.2, β = 0.1, log π_ref = 0
  //   row 0: −min(1.3, 1.2) = −1.2; −min(0.7, 0.8) = −0.7      row 1: −min(−1, −1) = 1
  //   k3 = 1/ρ + log ρ − 1: 0.0315945, 0.0718962, 0, (0.0044007)
  const k3 = (rho: number): number => 1 / rho + Math.log(rho) - 1;
  const tok = [-1.2 + 0.1 * k3(1.3), -0.7 + 0.1 * k3(0.7), 1, 1.1 + 0.1 * k3(1.1)];
  const masked = tok[0]! + tok[1]! + tok[2]!;
  for (const [type, want] of [
    ['grpo', ((tok[0]! + tok[1]!) / 2 + tok[2]!) / 2],
    ['bnpo', masked / 3],
    ['dr_grpo', masked / (2 * 4)],
    ['dapo', masked / 6],
  ] as const) {
    tidy(() => {
      const lp = tensorOf([Math.log(1.3), Math.log(0.7), 0, Math.log(1.1)], [2, 2], true);
      const mask = tensorOf([1, 1, 1, 0], [2, 2]);
      const { perToken, kl, stats } = grpoPerTokenLoss(lp, tensorOf([0, 0, 0, 0], [2, 2]), tensorOf([0, 0, 0, 0], [2, 2]), tensorOf([1, -1], [2]), mask, {
        beta: 0.1,
        epsilonLow: 0.2,
        epsilonHigh: 0.2,
      });
      assertClose(perToken.toArray(), tok, { rtol: 1e-5, atol: 1e-6 });
      assertClose(kl!, [k3(1.3), k3(0.7), 0, k3(1.1)], { rtol: 1e-4, atol: 1e-6 });
      assert.deepEqual(stats, { lowClipped: 0, highClipped: 1 / 3, regionClipped: 1 / 3 });
      const loss = aggregateTokenLoss(perToken, mask, type, { gradientAccumulationSteps: 1, maxCompletionLength: 4, tokensInBatch: 6 });
      close(loss.item(), want, 1e-5, type);
    });
  }
  // gradient of the 'bnpo' loss: clipped token 0 only keeps its KL term; the others −A·ρ + β·(1 − 1/ρ)
  tidy(() => {
    const lp = tensorOf([Math.log(1.3), Math.log(0.7), 0, Math.log(1.1)], [2, 2], true);
    const mask = tensorOf([1, 1, 1, 0], [2, 2]);
    const { perToken } = grpoPerTokenLoss(lp, tensorOf([0, 0, 0, 0], [2, 2]), tensorOf([0, 0, 0, 0], [2, 2]), tensorOf([1, -1], [2]), mask, { beta: 0.1, epsilonLow: 0.2, epsilonHigh: 0.2 });
    aggregateTokenLoss(perToken, mask, 'bnpo', { gradientAccumulationSteps: 1, maxCompletionLength: 4, tokensInBatch: 3 }).backward();
    const dk3 = (rho: number): number => 1 - 1 / rho; // d k3 / d log π
    assertClose(lp.grad!.toArray(), [(0.1 * dk3(1.3)) / 3, (-0.7 + 0.1 * dk3(0.7)) / 3, 1 / 3, 0], { rtol: 1e-5, atol: 1e-7 });
  });
});

test('RLOO sequence-level clipped loss', () => {
  // row 0: Σ log π = log 1.5 (ratio 1.5, A = 2): −min(3, 2.4) = −2.4 (high clipped)
  // row 1: Σ log π = log 0.5 (the masked 5 is left out) (ratio 0.5, A = −1): −min(−0.5, −0.8) = 0.8 (low clipped)
  tidy(() => {
    const lp = tensorOf([Math.log(1.5), 0, Math.log(0.5), 5], [2, 2], true);
    const { loss, stats } = rlooSequenceLoss(lp, tensorOf([1, 1, 1, 0], [2, 2]), tensorOf([0, 0], [2]), tensorOf([2, -1], [2]), { epsilonLow: 0.2, epsilonHigh: 0.2 });
    close(loss.item(), -0.8, 1e-6);
    assert.deepEqual(stats, { lowClipped: 0.5, highClipped: 0.5, regionClipped: 1 });
    loss.backward();
    assertClose(lp.grad!.toArray(), [0, 0, 0, 0], { atol: 0 }); // both clipped
    // unclipped: ratio 1.1, A = 1: ∂/∂log π_t = −A·ρ/B for every masked token of the row
    const lp2 = tensorOf([Math.log(1.1), 0], [1, 2], true);
    const r2 = rlooSequenceLoss(lp2, tensorOf([1, 1], [1, 2]), tensorOf([0], [1]), tensorOf([1], [1]), { epsilonLow: 0.2, epsilonHigh: 0.2 });
    close(r2.loss.item(), -1.1, 1e-6);
    r2.loss.backward();
    assertClose(lp2.grad!.toArray(), [-1.1, -1.1], { rtol: 1e-6 });
  });
});

test('loss shape checks name the op and the shapes', () => {
  tidy(() => {
    const a = Tensor.zeros([2, 3]),
      b = Tensor.zeros([2, 4]);
    assert.throws(() => ppoPolicyLoss(a, b, a, a, 0.2), /ppoPolicyLoss: oldLogprobs \[2, 4\] does not match newLogprobs \[2, 3\]/);
    assert.throws(() => ppoValueLoss(a, a, a, b, 0.2), /ppoValueLoss: mask \[2, 4\]/);
    assert.throws(() => grpoPerTokenLoss(a, a, null, Tensor.zeros([3]), a, { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2 }), /advantages \[3\] must be \[2\]/);
    assert.throws(() => grpoPerTokenLoss(a, a, null, Tensor.zeros([2]), a, { beta: 0.1, epsilonLow: 0.2, epsilonHigh: 0.2 }), /reference log-probs/);
  });
});
