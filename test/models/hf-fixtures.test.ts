// alignkit against transformers 5.17 on the shared fixtures: logits, next-token log-probs, the DPO loss and the
// gradient of every policy parameter (GPT-2 and Llama with grouped-query attention), and reward-model scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { maskedSum } from '../../src/engine/ops/elementwise.js';
import { packageRoot } from '../../src/engine/native.js';
import { readSafetensors, toFloat32, toInt32 } from '../../src/io/safetensors.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { lastTokenIndex, nextTokenLogprobs, sequenceScore } from '../../src/models/heads.js';
import type { Transformer } from '../../src/models/transformer.js';
import { dpoLoss } from '../../src/train/losses.js';
import { relNormError } from '../helpers/check.js';

const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');

function expected(name: string): Map<string, Float32Array | Int32Array> & { shapes: Map<string, number[]> } {
  const { tensors } = readSafetensors(join(FIX, name, 'expected.safetensors'));
  const out = new Map<string, Float32Array | Int32Array>() as Map<string, Float32Array | Int32Array> & { shapes: Map<string, number[]> };
  out.shapes = new Map();
  for (const [k, e] of tensors) {
    out.set(k, e.dtype === 'I64' || e.dtype === 'I32' ? toInt32(e, k) : toFloat32(e, k));
    out.shapes.set(k, e.shape);
  }
  return out;
}

/** Σ_t log p(token t+1) over completion tokens: labels_mask[b, t+1] marks them. */
function seqLogps(model: Transformer, ids: Int32Array, mask: Int32Array, labels: Float32Array, B: number, T: number): { lp: Tensor; seq: Tensor; logits: Tensor } {
  const logits = model.forward(ids, B, T, { attentionMask: mask });
  const lp = nextTokenLogprobs(logits, ids, B, T);
  const m = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) m[b * T + t] = labels[b * T + t + 1]!;
  return { lp, seq: maskedSum(lp, Tensor.from(m, [B, T]), 1), logits };
}

for (const name of ['tiny-gpt2', 'tiny-llama']) {
  test(`${name}: logits, log-probs, DPO loss and every gradient match transformers`, () => {
    const exp = expected(name);
    const [B, T] = exp.shapes.get('input_ids') as [number, number];
    const ids = exp.get('input_ids') as Int32Array,
      mask = exp.get('attention_mask') as Int32Array;
    const labels = exp.get('labels_mask') as Float32Array;
    const policy = loadPretrained(join(FIX, name)).model;
    const ref = loadPretrained(join(FIX, name + '-ref')).model;
    const V = policy.config.vocabSize;
    tidy(() => {
      const pol = seqLogps(policy, ids, mask, labels, B, T);
      // logits where the attention mask is 1
      const got = pol.logits.toArray(),
        want = exp.get('logits') as Float32Array;
      const g: number[] = [],
        w: number[] = [];
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          if (mask[b * T + t])
            for (let v = 0; v < V; v++) {
              g.push(got[(b * T + t) * V + v]!);
              w.push(want[(b * T + t) * V + v]!);
            }
      const logitErr = relNormError(g, w);
      assert.ok(logitErr <= 1e-4, `logits relative error ${logitErr}`);
      // per-token log-probs [B, T-1] where the next token is real
      const lp = pol.lp.toArray(),
        wlp = exp.get('token_logps') as Float32Array;
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T - 1; t++) {
          if (!mask[b * T + t + 1]) continue;
          assert.ok(Math.abs(lp[b * T + t]! - wlp[b * (T - 1) + t]!) <= 1e-4 * Math.max(1, Math.abs(wlp[b * (T - 1) + t]!)), `token_logps[${b},${t}]: ${lp[b * T + t]} vs ${wlp[b * (T - 1) + t]}`);
        }
      const seq = pol.seq.toArray(),
        wseq = exp.get('policy_seq_logps') as Float32Array;
      for (let b = 0; b < B; b++) assert.ok(Math.abs(seq[b]! - wseq[b]!) <= 1e-4 * Math.abs(wseq[b]!), `policy_seq_logps[${b}]: ${seq[b]} vs ${wseq[b]}`);
      const refSeq = noGrad(() => seqLogps(ref, ids, mask, labels, B, T).seq);
      const wref = exp.get('ref_seq_logps') as Float32Array;
      refSeq.toArray().forEach((v, b) => assert.ok(Math.abs(v - wref[b]!) <= 1e-4 * Math.abs(wref[b]!), `ref_seq_logps[${b}]: ${v} vs ${wref[b]}`));
      // rows: chosen0, rejected0, chosen1, rejected1
      const col = (t: Tensor, j: number): Tensor =>
        t
          .reshape([B / 2, 2])
          .slice(1, j, j + 1)
          .reshape([B / 2]);
      const { loss } = dpoLoss(col(pol.seq, 0), col(pol.seq, 1), col(refSeq, 0), col(refSeq, 1), { beta: 0.1 });
      const wantLoss = (exp.get('dpo_loss') as Float32Array)[0]!;
      assert.ok(Math.abs(loss.item() - wantLoss) <= 1e-5, `DPO loss ${loss.item()} vs ${wantLoss}`);
      loss.backward();
    });
    let worst = 0,
      worstName = '';
    for (const [pname, p] of policy.params) {
      const want = exp.get('grad.' + pname) as Float32Array | undefined;
      assert.ok(want, `transformers has no gradient for ${pname}`);
      assert.ok(p.grad, `no gradient for ${pname}`);
      const err = relNormError(p.grad.toArray(), want);
      if (err > worst) {
        worst = err;
        worstName = pname;
      }
    }
    assert.ok(worst <= 1e-3, `gradient of ${worstName}: relative error ${worst}`);
    policy.dispose();
    ref.dispose();
  });
}

test('tiny-gpt2-rm: reward scores at the last non-pad token match transformers', () => {
  const exp = expected('tiny-gpt2-rm');
  const [B, T] = exp.shapes.get('input_ids') as [number, number];
  const ids = exp.get('input_ids') as Int32Array;
  const rm = loadPretrained(join(FIX, 'tiny-gpt2-rm'));
  assert.ok(rm.score, 'a sequence-classification checkpoint loads its score head');
  const scores = noGrad(() =>
    tidy(() => {
      const attentionMask = Int32Array.from(ids, (id) => (id === 0 ? 0 : 1));
      const h = rm.model.hidden(ids, B, T, { attentionMask });
      return sequenceScore(h, rm.score!, lastTokenIndex(B, T, { ids, padTokenId: rm.hfConfig.model.padTokenId })).toArray();
    }),
  );
  const want = exp.get('scores') as Float32Array;
  for (let b = 0; b < B; b++) assert.ok(Math.abs(scores[b]! - want[b]!) <= 1e-4 * Math.max(1, Math.abs(want[b]!)), `score[${b}] ${scores[b]} vs ${want[b]}`);
  rm.model.dispose();
  rm.score!.dispose();
});
