// Checkpoints: loading every fixture as float32, sharded write → read in Hugging Face's layout, BF16/F16 saving,
// index consistency errors, name normalisation and checks against the config, pretrained folders round-tripped,
// and the loader's peak memory measured in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint, loadStateDict, saveCheckpoint, saveStateDict, type StateDict } from '../../src/io/checkpoint.js';
import { readConfig } from '../../src/io/config.js';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from '../../src/io/half.js';
import { checkParameters, expectedParameterShapes, normalizeParameterNames, reconcileConfigWithWeights } from '../../src/io/hf-names.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { INDEX_FILE, parseSize, planShards } from '../../src/io/sharded.js';
import { fixture, withTmp } from './paths.js';

function assertSameStateDict(a: StateDict, b: StateDict, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: names`);
  for (const [k, e] of a) {
    const f = b.get(k)!;
    assert.deepEqual(f.shape, e.shape, `${what}: ${k} shape`);
    assert.ok(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength).equals(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength)), `${what}: ${k} values`);
  }
}

test('loadStateDict reads every fixture checkpoint as float32 equal to the stored tensors', () => {
  for (const name of ['tiny-gpt2', 'tiny-gpt2-ref', 'tiny-gpt2-rm', 'tiny-llama', 'tiny-llama-ref']) {
    const sd = loadStateDict(fixture(name));
    const raw = readSafetensors(fixture(name, 'model.safetensors')).tensors;
    assert.equal(sd.size, raw.size);
    for (const [k, e] of raw) {
      assert.deepEqual(sd.get(k)!.shape, e.shape);
      assert.deepEqual(sd.get(k)!.data, e.data);
    }
  }
  const only = loadStateDict(fixture('tiny-llama'), { filter: (n) => n.includes('layers.1.') });
  assert.equal(only.size, 9);
});

test('loadCheckpoint: fixtures pass the name/shape check; GPT-2 has no lm_head (tied), Llama has one', () => {
  const g = loadCheckpoint(fixture('tiny-gpt2'));
  assert.equal(g.config.architecture, 'GPT2LMHeadModel');
  assert.equal(g.weights.has('lm_head.weight'), false);
  assert.equal(g.weights.size, 28);
  assert.deepEqual(g.generation!.eosTokenIds, [50256]);
  const rm = loadCheckpoint(fixture('tiny-gpt2-rm'));
  assert.deepEqual(rm.weights.get('score.weight')!.shape, [1, 64]);
  assert.equal(rm.generation, null);
  const l = loadCheckpoint(fixture('tiny-llama'));
  assert.deepEqual(l.weights.get('lm_head.weight')!.shape, [1000, 64]);
  assert.deepEqual(l.weights.get('model.layers.0.self_attn.v_proj.weight')!.shape, [32, 64]);
  assert.equal(l.weights.size, expectedParameterShapes(l.config).size);
});

/** A state dict from a fixture, as the models will hand it over. */
const llamaWeights = () => loadStateDict(fixture('tiny-llama'));

test('sharded save: HF file names and index layout; loads back bit-exactly; stale files of an earlier save removed', () => {
  withTmp((dir) => {
    const sd = llamaWeights();
    const res = saveStateDict(dir, sd, { maxShardSize: 300_000 });
    assert.deepEqual(res.files, ['model-00001-of-00004.safetensors', 'model-00002-of-00004.safetensors', 'model-00003-of-00004.safetensors', 'model-00004-of-00004.safetensors']);
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8'));
    assert.deepEqual(Object.keys(index), ['metadata', 'weight_map']);
    let total = 0,
      params = 0;
    for (const e of sd.values()) {
      total += e.data.byteLength;
      params += e.data.length;
    }
    assert.deepEqual(index.metadata, { total_parameters: params, total_size: total });
    assert.deepEqual(Object.keys(index.weight_map), [...sd.keys()].sort(), 'every tensor, keys sorted');
    for (const f of res.files) {
      const size = readFileSync(join(dir, f)).length;
      const { tensors, metadata } = readSafetensors(join(dir, f));
      assert.deepEqual(metadata, { format: 'pt' });
      let bytes = 0;
      for (const [k, e] of tensors) {
        assert.equal(index.weight_map[k], f);
        bytes += e.data.byteLength;
      }
      assert.ok(bytes <= 300_000 || tensors.size === 1, `${f}: ${bytes} bytes over the limit with ${tensors.size} tensors`);
      assert.ok(size > bytes);
    }
    assertSameStateDict(sd, loadStateDict(dir), 'sharded');
    assertSameStateDict(sd, loadStateDict(join(dir, INDEX_FILE)), 'via index path');
    // saving again in one file replaces the shards and the index
    saveStateDict(dir, sd);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    assertSameStateDict(sd, loadStateDict(dir), 'single');
    // and sharding again removes the single file
    saveStateDict(dir, sd, { maxShardSize: '0.5MB' });
    assert.deepEqual(readdirSync(dir).sort(), ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', INDEX_FILE]);
  });
});

test('shard planning and sizes: greedy in order, an oversized tensor alone; decimal and binary units', () => {
  // as huggingface_hub: the oversized tensor is emitted at once while the open shard keeps filling
  assert.deepEqual(
    planShards(
      [
        ['a', 4],
        ['b', 4],
        ['c', 3],
        ['d', 20],
        ['e', 1],
      ],
      10,
    ),
    [['a', 'b'], ['d'], ['c', 'e']],
  );
  assert.deepEqual(planShards([], 10), [[]]);
  assert.equal(parseSize('5GB'), 5e9);
  assert.equal(parseSize('2GiB'), 2 * 2 ** 30);
  assert.equal(parseSize('500 mb'), 5e8);
  assert.equal(parseSize(1234.7), 1234);
  assert.throws(() => parseSize('5 parsecs'), /cannot parse size "5 parsecs"/);
  assert.throws(() => parseSize(0), /positive/);
});

test('saving as BF16 / F16 rounds to nearest even; loading upcasts (large tensors converted in chunks)', () => {
  withTmp((dir) => {
    const big = new Float32Array(4_500_001); // 9 MB of BF16: three 4 MiB conversion chunks
    for (let i = 0; i < big.length; i++) big[i] = Math.sin(i * 0.7) * (1 + (i % 1000));
    const sd: StateDict = new Map([
      ['big', { shape: [big.length], data: big }],
      ['w', { shape: [2, 3], data: Float32Array.from([0.1, 1 / 3, -2.5, 1e-8, 70000, 3.14159]) }],
    ]);
    for (const [dtype, down, up] of [
      ['BF16', f32ArrayToBf16, bf16ArrayToF32],
      ['F16', f32ArrayToF16, f16ArrayToF32],
    ] as const) {
      saveStateDict(dir, sd, { dtype });
      const raw = readSafetensors(join(dir, 'model.safetensors')).tensors;
      assert.equal(raw.get('w')!.dtype, dtype);
      const back = loadStateDict(dir);
      for (const [k, e] of sd) assert.deepEqual(back.get(k)!.data, up(down(e.data)), `${dtype} ${k}`);
    }
    assert.equal(loadStateDict(dir).get('w')!.data[4], Infinity, 'F16 overflow → inf, as torch');
    assert.throws(() => saveStateDict(dir, sd, { dtype: 'I32' as 'F32' }), /dtype must be F32, F16 or BF16/);
    assert.throws(() => saveStateDict(dir, new Map([['x', { shape: [3], data: new Float32Array(2) }]])), /"x" has shape \[3\] but 2 values/);
  });
});

test('index consistency: a missing shard, a tensor the index misplaces or omits, a listed tensor not found', () => {
  withTmp((dir) => {
    const sd = llamaWeights();
    saveStateDict(dir, sd, { maxShardSize: 300_000 });
    const idxPath = join(dir, INDEX_FILE);
    const index = JSON.parse(readFileSync(idxPath, 'utf8'));
    const edit = (f: (wm: Record<string, string>) => void) => {
      const copy = JSON.parse(JSON.stringify(index));
      f(copy.weight_map);
      writeFileSync(idxPath, JSON.stringify(copy));
    };
    edit((wm) => (wm['model.norm.weight'] = 'model-00009-of-00009.safetensors'));
    assert.throws(() => loadStateDict(dir), /shard .*model-00009-of-00009\.safetensors is missing/);
    edit((wm) => (wm['model.layers.0.input_layernorm.weight'] = 'model-00004-of-00004.safetensors'));
    assert.throws(() => loadStateDict(dir), /holds "model\.layers\.0\.input_layernorm\.weight", which the index places in .*model-00004-of-00004/);
    edit((wm) => (wm['lm_head.weight'] = 'model-00004-of-00004.safetensors')); // lm_head's own shard is then never opened
    assert.throws(() => loadStateDict(dir), /index lists "lm_head\.weight" in .*model-00004-of-00004\.safetensors, but that shard does not hold it/);
    edit((wm) => delete wm['model.norm.weight']);
    assert.throws(() => loadStateDict(dir), /holds "model\.norm\.weight", which the index does not list/);
    edit((wm) => (wm['extra.weight'] = 'model-00001-of-00004.safetensors'));
    assert.throws(() => loadStateDict(dir), /index lists "extra\.weight" in .* but that shard does not hold it/);
    edit((wm) => (wm['lm_head.weight'] = '../elsewhere.safetensors'));
    assert.throws(() => loadStateDict(dir), /weight_map\["lm_head\.weight"\] must be a file name in the same folder/);
    writeFileSync(idxPath, '{"weight_map": ');
    assert.throws(() => loadStateDict(dir), /shard index: .*model\.safetensors\.index\.json is not valid JSON/);
  });
  withTmp((dir) => {
    writeFileSync(join(dir, 'pytorch_model.bin'), 'x');
    assert.throws(() => loadStateDict(dir), /no model\.safetensors or model\.safetensors\.index\.json \(found pytorch_model\.bin: only safetensors/);
  });
});

test('name normalisation: GPT-2 without "transformer.", old mask buffers, tied lm_head; Llama without "model."', () => {
  const g = readConfig(fixture('tiny-gpt2'));
  const sd = loadStateDict(fixture('tiny-gpt2'));
  const bare = new Map([...sd].map(([k, v]) => [k.replace(/^transformer\./, ''), v]));
  bare.set('h.0.attn.bias', { shape: [1, 1, 64, 64], data: new Float32Array(4096) });
  bare.set('h.1.attn.masked_bias', { shape: [], data: new Float32Array(1) });
  bare.set('lm_head.weight', sd.get('transformer.wte.weight')!);
  const norm = normalizeParameterNames(g, bare);
  assert.deepEqual([...norm.keys()].sort(), [...sd.keys()].sort());
  assert.equal(norm.get('transformer.h.0.attn.c_attn.bias'), sd.get('transformer.h.0.attn.c_attn.bias'), 'shared, not copied');
  assert.doesNotThrow(() => checkParameters(g, norm));

  const l = readConfig(fixture('tiny-llama'));
  const ls = loadStateDict(fixture('tiny-llama'));
  const lbare = new Map([...ls].map(([k, v]) => [k.replace(/^model\./, ''), v]));
  lbare.set('layers.0.self_attn.rotary_emb.inv_freq', { shape: [8], data: new Float32Array(8) });
  assert.deepEqual([...normalizeParameterNames(l, lbare).keys()].sort(), [...ls.keys()].sort());
  const dup = new Map(ls);
  dup.set('norm.weight', ls.get('model.norm.weight')!);
  assert.throws(() => normalizeParameterNames(l, dup), /both "model\.norm\.weight" and an unprefixed copy/);
});

test('checkParameters names missing, unexpected and mis-shaped tensors; biases are detected from the weights', () => {
  const l = readConfig(fixture('tiny-llama'));
  const sd = loadStateDict(fixture('tiny-llama'));
  const broken = new Map(sd);
  broken.delete('lm_head.weight');
  broken.set('model.layers.0.self_attn.k_proj.weight', { shape: [64, 64], data: new Float32Array(4096) });
  broken.set('model.layers.9.mlp.up_proj.weight', { shape: [1], data: new Float32Array(1) });
  assert.throws(
    () => checkParameters(l, broken, 'checkpoint x'),
    /^Error: checkpoint x does not match LlamaForCausalLM \(2 layers, width 64\): model\.layers\.0\.self_attn\.k_proj\.weight: shape \[64,64\], expected \[32,64\]; missing lm_head\.weight \[1000,64\]; unexpected model\.layers\.9\.mlp\.up_proj\.weight$/,
  );
  // q/k/v biases in the weights of a config that does not declare attention_bias (Qwen2-style): taken from the weights
  const withBias = new Map(sd);
  for (let i = 0; i < 2; i++) {
    for (const [p, n] of [
      ['q_proj', 64],
      ['k_proj', 32],
      ['v_proj', 32],
    ] as const) {
      withBias.set(`model.layers.${i}.self_attn.${p}.bias`, { shape: [n], data: new Float32Array(n) });
    }
  }
  assert.throws(() => checkParameters(l, withBias), /unexpected model\.layers\.0\.self_attn\.q_proj\.bias/);
  const r = { ...l, model: reconcileConfigWithWeights(l.model, withBias.keys()) };
  assert.deepEqual([r.model.qkvBias, r.model.oBias, r.model.mlpBias], [true, false, false]);
  assert.equal(l.model.qkvBias, false, 'the input config is not modified');
  assert.doesNotThrow(() => checkParameters(r, withBias));
});

test('saveCheckpoint → loadCheckpoint round-trips config, weights and generation config; tied lm_head not written', () => {
  withTmp((dir) => {
    const g = loadCheckpoint(fixture('tiny-gpt2'));
    saveCheckpoint(dir, g, { maxShardSize: 400_000 });
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', INDEX_FILE]);
    const back = loadCheckpoint(dir);
    assertSameStateDict(g.weights, back.weights, 'gpt2');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(fixture('tiny-gpt2', 'config.json'), 'utf8')));
    assert.deepEqual(back.generation, g.generation);
    // a tied lm_head handed over is left out of the files
    const withHead = new Map(g.weights);
    withHead.set('lm_head.weight', g.weights.get('transformer.wte.weight')!);
    saveCheckpoint(dir, { ...g, weights: withHead, generation: null }, { dtype: 'BF16' });
    const index = readSafetensors(join(dir, 'model.safetensors')).tensors;
    assert.equal(index.has('lm_head.weight'), false);
    assert.equal(readConfig(dir).dtype, 'bfloat16');
    assert.equal(existsSync(join(dir, INDEX_FILE)), false);
    // weights that do not fit the config are refused before anything is written
    const l = loadCheckpoint(fixture('tiny-llama'));
    assert.throws(() => saveCheckpoint(dir, { ...l, weights: g.weights }), /saveCheckpoint weights does not match LlamaForCausalLM/);
  });
});

test('an untied config whose checkpoint lacks lm_head is refused by loadCheckpoint', () => {
  withTmp((dir) => {
    const l = loadCheckpoint(fixture('tiny-llama'));
    const w = new Map(l.weights);
    w.delete('lm_head.weight');
    saveStateDict(dir, w);
    writeFileSync(join(dir, 'config.json'), readFileSync(fixture('tiny-llama', 'config.json')));
    assert.throws(() => loadCheckpoint(dir), /missing lm_head\.weight \[1000,64\]/);
  });
});

test('peak memory of loading is about the float32 size (child process, 64 MiB of weights, F32 and BF16 files)', () => {
  const probe = join(fileURLToPath(new URL('.', import.meta.url)), 'memory-probe.js');
  withTmp((dir) => {
    for (const dtype of ['F32', 'BF16']) {
      const d = join(dir, dtype);
      execFileSync(process.execPath, [probe, 'write', d, '64', dtype, '2']);
      const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', probe, 'load', d], { encoding: 'utf8' }));
      assert.equal(out.f32Bytes, 64 * 2 ** 20);
      const extra = out.peak - out.before;
      // the loader's own budget: 1.2 × float32 size (+ 16 MiB for the runtime's own growth, which varies from run
      // to run by several MiB); a second copy of the weights would need >= 128 MiB and still fails this
      assert.ok(extra <= 1.2 * out.f32Bytes + 16 * 2 ** 20, `${dtype}: peak ${extra / 2 ** 20} MiB over the start for ${out.f32Bytes / 2 ** 20} MiB of weights`);
    }
  });
});

test('writeSafetensors into a folder that does not exist fails cleanly', () => {
  withTmp((dir) => {
    assert.throws(() => writeSafetensors(join(dir, 'no', 'x.safetensors'), {}), /ENOENT/);
  });
});
