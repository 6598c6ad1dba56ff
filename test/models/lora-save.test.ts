// LoRA (adapters on, off, merged; only adapters train; PEFT save/load) and saving a model as a Hugging Face
// directory that loads back identically.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tidy } from '../../src/engine/tensor.js';
import { mean } from '../../src/engine/ops/elementwise.js';
import { packageRoot } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import { loadPretrained, savePretrained } from '../../src/io/pretrained.js';
import { loadAdapter, saveAdapter } from '../../src/io/peft.js';
import type { Transformer } from '../../src/models/transformer.js';
import { assertClose } from '../helpers/check.js';

const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');
const ids = Int32Array.from([5, 17, 300, 42, 7, 99, 1, 2, 3, 4, 5, 6]);
const logitsOf = (m: Transformer): Float32Array => noGrad(() => tidy(() => m.forward(ids, 2, 6).toArray()));

for (const [name, targets] of [
  ['tiny-llama', ['q_proj', 'v_proj', 'down_proj']],
  ['tiny-gpt2', ['c_attn', 'c_fc']],
] as const) {
  test(`${name}: LoRA adapters switch off, merge, train alone and round-trip through PEFT's layout`, () => {
    const { model } = loadPretrained(join(FIX, name));
    const base = logitsOf(model);
    const cfg = { r: 4, alpha: 8, dropout: 0, targetModules: targets };
    const adapters = model.addLora(cfg, 1);
    assert.equal(adapters.length, model.config.numLayers * targets.length);
    assert.deepEqual(logitsOf(model), base, 'B starts at zero: the adapted model equals the base');
    // give B values so the adapters matter
    const rng = new Random(2);
    for (const a of adapters) a.B.data.set(Float32Array.from({ length: a.B.size }, () => rng.normal() * 0.05));
    const adapted = logitsOf(model);
    assert.notDeepEqual(adapted, base);
    assert.deepEqual(
      model.withoutAdapters(() => logitsOf(model)),
      base,
      'adapters off = the frozen base',
    );
    // only adapters get gradients
    tidy(() => mean(model.forward(ids, 2, 6)).backward());
    for (const p of model.parameters()) assert.equal(p.grad, null, `${p.name} is frozen`);
    for (const a of adapters) assert.ok(a.B.grad && a.A.grad, `${a.name} gets gradients`);
    assert.equal(model.trainableParameters().length, 2 * adapters.length);
    // PEFT save/load into a fresh copy of the base
    const dir = mkdtempSync(join(tmpdir(), 'alignkit-peft-'));
    try {
      saveAdapter(dir, model, cfg, join(FIX, name));
      const conf = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      assert.equal(conf.peft_type, 'LORA');
      assert.equal(conf.fan_in_fan_out, name === 'tiny-gpt2');
      const fresh = loadPretrained(join(FIX, name)).model;
      loadAdapter(dir, fresh);
      assert.deepEqual(logitsOf(fresh), adapted);
      fresh.dispose();
      // an adapter directory loads as its base model with the adapters on
      const viaDir = loadPretrained(dir).model;
      assert.equal(viaDir.adapters.size, adapters.length);
      assert.deepEqual(logitsOf(viaDir), adapted);
      viaDir.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // merging folds the update into the weights
    model.mergeLora();
    assert.equal(model.adapters.size, 0);
    assertClose(logitsOf(model), adapted, { rtol: 1e-4, atol: 1e-5 }, 'merged logits');
    model.dispose();
  });
}

test('savePretrained writes a directory that loads back to identical logits (F32), and close ones (BF16)', () => {
  for (const name of ['tiny-gpt2', 'tiny-llama', 'tiny-gpt2-rm']) {
    const p = loadPretrained(join(FIX, name));
    const want = logitsOf(p.model);
    const dir = mkdtempSync(join(tmpdir(), 'alignkit-save-'));
    try {
      savePretrained(dir, p);
      const q = loadPretrained(dir);
      assert.deepEqual(logitsOf(q.model), want, `${name} F32 round trip`);
      assert.equal(q.hfConfig.architecture, p.hfConfig.architecture);
      assert.ok(existsSync(join(dir, 'generation_config.json')), 'generation_config.json is written');
      assert.deepEqual(q.generation?.eosTokenIds, p.generation?.eosTokenIds ?? (p.hfConfig.model.eosTokenId == null ? [] : [p.hfConfig.model.eosTokenId].flat()));
      if (p.score) assert.deepEqual(q.score!.toArray(), p.score.toArray());
      q.model.dispose();
      savePretrained(dir, p, { dtype: 'BF16' });
      const r = loadPretrained(dir);
      assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).dtype, 'bfloat16');
      assertClose(logitsOf(r.model), want, { rtol: 0.05, atol: 0.05 }, `${name} BF16 logits`);
      r.model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    p.model.dispose();
    p.score?.dispose();
  }
});
