// alignkit's preference losses and one PPO update against PyTorch: the numbers in test/fixtures/torch/
// crosscheck.json were computed in float64 by test/fixtures/torch/make_crosscheck.py (plain PyTorch, the formulas as
// the papers state them). alignkit computes in float32, so values agree to ~1e-6 relative and gradients to ~1e-5.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/engine/native.js';
import { add, scale } from '../../src/engine/ops/elementwise.js';
import { Tensor, tidy } from '../../src/engine/tensor.js';
import { bradleyTerryLoss } from '../../src/train/bradley-terry.js';
import { dpoLoss, type DpoLossType } from '../../src/train/losses.js';
import { gae } from '../../src/train/rl/gae.js';
import { klPerToken } from '../../src/train/rl/kl.js';
import { ppoPolicyLoss, ppoValueLoss } from '../../src/train/rl/losses.js';
import { maskedWhiten } from '../../src/train/rl/whiten.js';

const X = JSON.parse(readFileSync(join(packageRoot(), 'test', 'fixtures', 'torch', 'crosscheck.json'), 'utf8'));
const VAL = 2e-6,
  GRAD = 2e-5;

function closeAll(got: ArrayLike<number>, want: readonly number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const scale = Math.max(1e-3, ...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol * scale, `${what}[${i}]: ${got[i]} vs torch ${want[i]}`);
}

test('DPO losses (sigmoid, label smoothing, per-pair smoothing, IPO, hinge, robust): values and gradients equal PyTorch', () => {
  const inp = X.dpo_inputs;
  const cases: [string, DpoLossType, number | number[]][] = [
    ['sigmoid', 'sigmoid', 0],
    ['sigmoid_smoothed', 'sigmoid', 0.1],
    ['sigmoid_per_pair', 'sigmoid', inp.eps_pair],
    ['robust', 'robust', 0.1],
    ['robust_per_pair', 'robust', inp.eps_pair],
    ['hinge', 'hinge', 0],
    ['ipo', 'ipo', 0],
  ];
  for (const [name, lossType, eps] of cases) {
    tidy(() => {
      const c = Tensor.param(Tensor.from(inp.policy_chosen), 'c'),
        r = Tensor.param(Tensor.from(inp.policy_rejected), 'r');
      const { loss } = dpoLoss(c, r, Tensor.from(inp.ref_chosen), Tensor.from(inp.ref_rejected), { beta: inp.beta, lossType, labelSmoothing: eps });
      const want = X.dpo[name];
      closeAll([loss.item()], [want.loss], VAL, `${name} loss`);
      loss.backward();
      closeAll(c.grad!.toArray(), want.grad_chosen, GRAD, `${name} ∂/∂chosen`);
      closeAll(r.grad!.toArray(), want.grad_rejected, GRAD, `${name} ∂/∂rejected`);
    });
  }
});

test('soft Bradley–Terry: value and gradients equal PyTorch', () => {
  const b = X.bradley_terry;
  tidy(() => {
    const c = Tensor.param(Tensor.from(b.chosen), 'c'),
      r = Tensor.param(Tensor.from(b.rejected), 'r');
    const loss = bradleyTerryLoss(c, r, { softLabel: b.soft_label });
    closeAll([loss.item()], [b.loss], VAL, 'loss');
    loss.backward();
    closeAll(c.grad!.toArray(), b.grad_chosen, GRAD, '∂/∂chosen');
    closeAll(r.grad!.toArray(), b.grad_rejected, GRAD, '∂/∂rejected');
  });
});

test('one PPO update: k1 rewards, GAE, whitening, clipped policy and value losses, clip fractions, approx KL and gradients equal PyTorch', () => {
  const p = X.ppo;
  const { B, T } = p as { B: number; T: number };
  const mask = Float32Array.from(p.mask as number[]);
  // rewards: −β·KL per token plus the score at the last real token
  const kl = klPerToken(p.old_logprobs, p.ref_logprobs, mask, 'k1');
  const rewards = new Float64Array(B * T);
  for (let i = 0; i < rewards.length; i++) rewards[i] = -p.kl_coef * kl[i]!;
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t = 0; t < T; t++) if (mask[b * T + t]) last = t;
    rewards[b * T + last]! += p.scores[b];
  }
  const { advantages, returns } = gae(rewards, p.old_values, mask, B, T, p.gamma, p.lam);
  closeAll(advantages, p.advantages, 1e-12, 'advantages');
  closeAll(returns, p.returns, 1e-12, 'returns');
  const white = maskedWhiten(advantages, mask);
  closeAll(white, p.whitened_advantages, 1e-10, 'whitened advantages');
  tidy(() => {
    const t = (a: ArrayLike<number>) => Tensor.from(Float32Array.from(a), [B, T]);
    const lp = Tensor.param(t(p.new_logprobs), 'lp'),
      v = Tensor.param(t(p.vpred), 'v');
    const m = t(mask);
    const pl = ppoPolicyLoss(lp, t(p.old_logprobs), t(white), m, p.cliprange);
    const vl = ppoValueLoss(v, t(p.old_values), t(returns), m, p.cliprange_value);
    closeAll([pl.loss.item(), vl.loss.item()], [p.policy_loss, p.value_loss], 1e-5, 'policy and value loss');
    assert.equal(pl.clipfrac, p.clipfrac);
    assert.equal(vl.clipfrac, p.value_clipfrac);
    closeAll([pl.approxkl], [p.approxkl], 1e-5, 'approxkl');
    const loss = add(pl.loss, scale(vl.loss, p.vf_coef));
    closeAll([loss.item()], [p.loss], 1e-5, 'loss');
    loss.backward();
    closeAll(lp.grad!.toArray(), p.grad_new_logprobs, 1e-4, '∂/∂log π');
    closeAll(v.grad!.toArray(), p.grad_vpred, 1e-4, '∂/∂V');
  });
  assert.ok(p.clipfrac > 0 && p.clipfrac < 1, 'the rollout mixes clipped and unclipped tokens');
});
