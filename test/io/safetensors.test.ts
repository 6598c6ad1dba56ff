// safetensors reader/writer: the shared fixtures (names, shapes, dtypes, values cross-read by hand), byte-identical
// rewriting of a transformers-written file, round trips for every dtype, conversions, malformed files and
// atomic writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsReader, readSafetensors, toFloat32, toInt32, writeSafetensors, type TensorEntry, type WritableEntry } from '../../src/io/safetensors.js';
import { fixture, withTmp } from './paths.js';

type RawHeader = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** The header of a file parsed independently of the module (u64 length + JSON). */
function rawHeader(path: string): { n: number; header: RawHeader } {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  return { n, header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')) };
}

/** A little-endian float32 read straight from the file bytes. */
function rawF32(path: string, name: string, index: number): number {
  const { n, header } = rawHeader(path);
  return readFileSync(path).readFloatLE(8 + n + header[name]!.data_offsets[0] + 4 * index);
}

function shapes(m: Map<string, TensorEntry>): Record<string, [string, number[]]> {
  return Object.fromEntries([...m].map(([k, e]) => [k, [e.dtype, e.shape]]));
}

const GPT2_LAYER: [string, (E: number) => number[]][] = [
  ['attn.c_attn.bias', (E) => [3 * E]],
  ['attn.c_attn.weight', (E) => [E, 3 * E]],
  ['attn.c_proj.bias', (E) => [E]],
  ['attn.c_proj.weight', (E) => [E, E]],
  ['ln_1.bias', (E) => [E]],
  ['ln_1.weight', (E) => [E]],
  ['ln_2.bias', (E) => [E]],
  ['ln_2.weight', (E) => [E]],
  ['mlp.c_fc.bias', (E) => [4 * E]],
  ['mlp.c_fc.weight', (E) => [E, 4 * E]],
  ['mlp.c_proj.bias', (E) => [E]],
  ['mlp.c_proj.weight', (E) => [4 * E, E]],
];

function gpt2Expected(E: number, V: number, P: number, L: number): Record<string, [string, number[]]> {
  const out: Record<string, [string, number[]]> = {
    'transformer.wte.weight': ['F32', [V, E]],
    'transformer.wpe.weight': ['F32', [P, E]],
    'transformer.ln_f.weight': ['F32', [E]],
    'transformer.ln_f.bias': ['F32', [E]],
  };
  for (let l = 0; l < L; l++) for (const [n, s] of GPT2_LAYER) out[`transformer.h.${l}.${n}`] = ['F32', s(E)];
  return out;
}

test('tiny-gpt2 / -ref / -rm model.safetensors: every name, dtype and shape; values equal the raw bytes', () => {
  for (const name of ['tiny-gpt2', 'tiny-gpt2-ref', 'tiny-gpt2-rm']) {
    const path = fixture(name, 'model.safetensors');
    const { tensors, metadata } = readSafetensors(path);
    assert.deepEqual(metadata, { format: 'pt' });
    const want = gpt2Expected(64, 1000, 64, 2);
    if (name === 'tiny-gpt2-rm') want['score.weight'] = ['F32', [1, 64]];
    assert.deepEqual(shapes(tensors), want);
    const wte = tensors.get('transformer.wte.weight')!.data as Float32Array;
    assert.ok(wte instanceof Float32Array);
    for (const i of [0, 1, 12345, 63999]) assert.equal(wte[i], rawF32(path, 'transformer.wte.weight', i));
  }
});

test('tiny-llama / -ref model.safetensors: GQA shapes (k/v 32 rows), untied lm_head', () => {
  for (const name of ['tiny-llama', 'tiny-llama-ref']) {
    const path = fixture(name, 'model.safetensors');
    const { tensors } = readSafetensors(path);
    const want: Record<string, [string, number[]]> = {
      'lm_head.weight': ['F32', [1000, 64]],
      'model.embed_tokens.weight': ['F32', [1000, 64]],
      'model.norm.weight': ['F32', [64]],
    };
    for (let l = 0; l < 2; l++) {
      const p = `model.layers.${l}.`;
      Object.assign(want, {
        [p + 'input_layernorm.weight']: ['F32', [64]],
        [p + 'post_attention_layernorm.weight']: ['F32', [64]],
        [p + 'mlp.down_proj.weight']: ['F32', [64, 176]],
        [p + 'mlp.gate_proj.weight']: ['F32', [176, 64]],
        [p + 'mlp.up_proj.weight']: ['F32', [176, 64]],
        [p + 'self_attn.q_proj.weight']: ['F32', [64, 64]],
        [p + 'self_attn.k_proj.weight']: ['F32', [32, 64]],
        [p + 'self_attn.v_proj.weight']: ['F32', [32, 64]],
        [p + 'self_attn.o_proj.weight']: ['F32', [64, 64]],
      });
    }
    assert.deepEqual(shapes(tensors), want);
    const k = tensors.get('model.layers.1.self_attn.k_proj.weight')!.data as Float32Array;
    assert.equal(k[2047], rawF32(path, 'model.layers.1.self_attn.k_proj.weight', 2047));
  }
});

test('expected.safetensors (DPO fixtures): I64 ids and masks with the documented padding, F32 outputs and grads', () => {
  for (const [name, params] of [
    ['tiny-gpt2', 28],
    ['tiny-llama', 21],
  ] as const) {
    const path = fixture(name, 'expected.safetensors');
    const { tensors, metadata } = readSafetensors(path);
    assert.equal(metadata.beta, '0.1');
    const ids = tensors.get('input_ids')!;
    const mask = tensors.get('attention_mask')!;
    assert.equal(ids.dtype, 'I64');
    assert.ok(ids.data instanceof BigInt64Array);
    assert.deepEqual(ids.shape, [4, 16]);
    assert.deepEqual(mask.shape, [4, 16]);
    const id32 = toInt32(ids, 'input_ids');
    const m32 = toInt32(mask, 'attention_mask');
    for (let i = 0; i < 64; i++) {
      assert.ok(id32[i]! >= 0 && id32[i]! < 1000);
      assert.equal(BigInt(id32[i]!), (ids.data as BigInt64Array)[i]);
      const row = Math.floor(i / 16),
        col = i % 16;
      const padded = (row === 2 && col >= 12) || (row === 3 && col >= 14);
      assert.equal(m32[i], padded ? 0 : 1);
      if (padded) assert.equal(id32[i], 0);
    }
    // shared prompts: rows 0/1 share 5 tokens, rows 2/3 share 4
    for (let c = 0; c < 5; c++) assert.equal(id32[c], id32[16 + c]);
    for (let c = 0; c < 4; c++) assert.equal(id32[32 + c], id32[48 + c]);
    const dtypes = shapes(tensors);
    assert.deepEqual(dtypes.logits, ['F32', [4, 16, 1000]]);
    assert.deepEqual(dtypes.token_logps, ['F32', [4, 15]]);
    assert.deepEqual(dtypes.labels_mask, ['F32', [4, 16]]);
    assert.deepEqual(dtypes.policy_seq_logps, ['F32', [4]]);
    assert.deepEqual(dtypes.ref_seq_logps, ['F32', [4]]);
    assert.deepEqual(dtypes.dpo_loss, ['F32', [1]]);
    assert.equal([...tensors.keys()].filter((k) => k.startsWith('grad.')).length, params);
    const loss = (tensors.get('dpo_loss')!.data as Float32Array)[0]!;
    assert.equal(loss, rawF32(path, 'dpo_loss', 0));
    assert.ok(loss > 0.5 && loss < 0.9, `dpo loss ${loss} should be near ln 2`);
  }
  const rm = readSafetensors(fixture('tiny-gpt2-rm', 'expected.safetensors'));
  assert.deepEqual(shapes(rm.tensors), { input_ids: ['I64', [3, 10]], scores: ['F32', [3, 1]] });
  const ids = toInt32(rm.tensors.get('input_ids')!);
  assert.deepEqual(Array.from(ids.slice(17, 20)), [0, 0, 0]); // row 1 padded from 7
  assert.deepEqual(Array.from(ids.slice(24, 30)), [0, 0, 0, 0, 0, 0]); // row 2 padded from 4
});

test('rewriting a transformers-written file reproduces it byte for byte (order, header padding)', () => {
  withTmp((dir) => {
    for (const [name, file] of [
      ['tiny-gpt2', 'model.safetensors'],
      ['tiny-llama', 'model.safetensors'],
      ['tiny-gpt2-rm', 'expected.safetensors'],
    ]) {
      const src = fixture(name!, file!);
      const { tensors, metadata } = readSafetensors(src);
      const out = join(dir, `${name}.safetensors`);
      writeSafetensors(out, tensors, metadata);
      assert.ok(readFileSync(out).equals(readFileSync(src)), `${name}/${file} differs after rewrite`);
    }
    // A multi-key metadata map (written from a Rust HashMap, so key order is arbitrary): same content.
    const src = fixture('tiny-llama', 'expected.safetensors');
    const { tensors, metadata } = readSafetensors(src);
    writeSafetensors(join(dir, 'e.safetensors'), tensors, metadata);
    const a = readFileSync(src),
      b = readFileSync(join(dir, 'e.safetensors'));
    assert.equal(b.length, a.length);
    const n = Number(a.readBigUInt64LE(0));
    assert.ok(b.subarray(8 + n).equals(a.subarray(8 + n)), 'data section identical');
  });
});

/** One tensor of every dtype with awkward values. */
function everyDtype(): Map<string, WritableEntry> {
  return new Map<string, WritableEntry>([
    ['f64', { dtype: 'F64', shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) }],
    ['f32', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -0, Infinity, NaN, 3e-45, -7]) }],
    ['f16', { dtype: 'F16', shape: [5], data: Uint16Array.from([0x3c00, 0x0001, 0x7c00, 0xfbff, 0x7e00]) }],
    ['bf16', { dtype: 'BF16', shape: [1, 3], data: Uint16Array.from([0x3f80, 0x0001, 0xff80]) }],
    ['i64', { dtype: 'I64', shape: [4], data: BigInt64Array.from([0n, -1n, 2n ** 40n, -(2n ** 63n)]) }],
    ['i32', { dtype: 'I32', shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) }],
    ['i16', { dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 32767]) }],
    ['i8', { dtype: 'I8', shape: [3], data: Int8Array.from([-128, 0, 127]) }],
    ['u8', { dtype: 'U8', shape: [2], data: Uint8Array.from([0, 255]) }],
    ['bool', { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) }],
    ['scalar', { dtype: 'F32', shape: [], data: Float32Array.from([42]) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

test('write → read round-trips every dtype bit-exactly, aligned, with metadata', () => {
  withTmp((dir) => {
    const path = join(dir, 'all.safetensors');
    const src = everyDtype();
    writeSafetensors(path, src, { note: 'x', é: 'ü' });
    const { tensors, metadata } = readSafetensors(path);
    assert.deepEqual(metadata, { note: 'x', é: 'ü' });
    assert.deepEqual(new Set(tensors.keys()), new Set(src.keys()));
    for (const [name, e] of src) {
      const got = tensors.get(name)!;
      assert.equal(got.dtype, e.dtype, name);
      assert.deepEqual(got.shape, [...e.shape], name);
      assert.equal(got.data.constructor, e.data.constructor, name);
      const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      assert.ok(bytes(got.data).equals(bytes(e.data)), `${name} bytes`);
    }
    // layout: header padded to 8; descending alignment so every tensor starts aligned to its element size
    const { n, header } = rawHeader(path);
    assert.equal(n % 8, 0);
    const order = Object.keys(header).filter((k) => k !== '__metadata__');
    // the reference order: I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL; names sorted within a dtype
    assert.deepEqual(order, ['i64', 'f64', 'empty', 'f32', 'scalar', 'i32', 'bf16', 'f16', 'i16', 'i8', 'u8', 'bool']);
    for (const k of order) {
      const size = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 }[header[k]!.dtype]!;
      assert.equal(header[k]!.data_offsets[0] % size, 0, `${k} aligned`);
    }
  });
});

test('writer converts Float32Array to F16/BF16 (round to nearest even) and Int32Array to I64', () => {
  withTmp((dir) => {
    const path = join(dir, 'conv.safetensors');
    const x = Float32Array.from([0.1, 1 / 3, 65520, -2.5]);
    writeSafetensors(path, {
      h: { dtype: 'F16', shape: [4], data: x },
      b: { dtype: 'BF16', shape: [4], data: x },
      d: { dtype: 'F64', shape: [4], data: x },
      ids: { dtype: 'I64', shape: [3], data: Int32Array.from([5, -3, 2 ** 31 - 1]) },
    });
    const { tensors } = readSafetensors(path);
    assert.deepEqual(Array.from(tensors.get('h')!.data as Uint16Array), [0x2e66, 0x3555, 0x7c00, 0xc100]);
    assert.deepEqual(Array.from(tensors.get('b')!.data as Uint16Array), [0x3dcd, 0x3eab, 0x4780, 0xc020]);
    assert.deepEqual(Array.from(tensors.get('d')!.data as Float64Array), Array.from(x));
    assert.deepEqual(Array.from(tensors.get('ids')!.data as BigInt64Array), [5n, -3n, 2147483647n]);
    assert.deepEqual(Array.from(toFloat32(tensors.get('h')!)), [0.0999755859375, 0.333251953125, Infinity, -2.5]);
    assert.deepEqual(Array.from(toFloat32(tensors.get('b')!)), [0.10009765625, 0.333984375, 65536, -2.5]);
  });
});

test('toFloat32 / toInt32 on every dtype; out-of-range I64 names the tensor', () => {
  const f = (e: WritableEntry) => Array.from(toFloat32(e as TensorEntry));
  const all = everyDtype();
  assert.deepEqual(f(all.get('f16')!), [1, 2 ** -24, Infinity, -65504, NaN]);
  assert.deepEqual(f(all.get('bf16')!), [1, 2 ** -133, -Infinity]);
  assert.deepEqual(f(all.get('i64')!), [0, -1, 2 ** 40, -(2 ** 63)]);
  assert.deepEqual(f(all.get('i32')!), [-(2 ** 31), 2 ** 31]); // 2^31-1 rounds to 2^31 in float32
  assert.deepEqual(f(all.get('i8')!), [-128, 0, 127]);
  assert.deepEqual(f(all.get('bool')!), [1, 0, 1]);
  assert.deepEqual(f(all.get('f64')!), [Math.fround(Math.PI), -Infinity, 0]);
  const big: TensorEntry = { dtype: 'I64', shape: [3], data: BigInt64Array.from([1n, -(2n ** 31n), 2n ** 31n]) };
  assert.throws(() => toInt32(big, 'input_ids'), /toInt32 input_ids: element 2 \(2147483648\) is outside the int32 range/);
  assert.deepEqual(Array.from(toInt32({ ...big, shape: [2], data: big.data.subarray(0, 2) } as TensorEntry)), [1, -(2 ** 31)]);
  assert.throws(() => toInt32(all.get('f32') as TensorEntry, 'x'), /dtype F32 is not an integer type/);
});

test('SafetensorsReader reads tensors on demand and upcasts through a reused scratch buffer', () => {
  withTmp((dir) => {
    const path = join(dir, 'r.safetensors');
    writeSafetensors(path, everyDtype());
    const r = SafetensorsReader.open(path);
    try {
      assert.equal(r.info('f16').byteLength, 10);
      const a = r.readFloat32('i64');
      assert.deepEqual(Array.from(a.data), [0, -1, 2 ** 40, -(2 ** 63)]);
      const b = r.readFloat32('f16', a.scratch);
      assert.equal(b.scratch, a.scratch, 'scratch reused (32 bytes hold the 10 of f16)');
      assert.deepEqual(Array.from(b.data), [1, 2 ** -24, Infinity, -65504, NaN]);
      const c = r.readFloat32('bf16', b.scratch);
      assert.deepEqual(Array.from(c.data), [1, 2 ** -133, -Infinity]);
      const d = r.readFloat32('f32', c.scratch);
      assert.notEqual(d.data.buffer, c.scratch!.buffer, 'F32 is read straight into its own array');
      assert.throws(() => r.read('nope'), /no tensor named "nope"/);
    } finally {
      r.close();
    }
    assert.throws(() => r.read('f32'), /reader is closed/);
  });
});

/** A file made of raw parts: header object (or text) and a data buffer; the length prefix can be forced. */
function craft(path: string, header: unknown, data: Buffer, forcedLen?: bigint): void {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(forcedLen ?? BigInt(text.length));
  writeFileSync(path, Buffer.concat([len, text, data]));
}

test('malformed files are refused with an error naming the file and the tensor/field', () => {
  withTmp((dir) => {
    const p = join(dir, 'bad.safetensors');
    const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'I32', shape: [1], data_offsets: [8, 12] } };
    const cases: [string, () => void, RegExp][] = [
      ['too short', () => writeFileSync(p, Buffer.from([1, 0, 0])), /bad\.safetensors: file is 3 bytes/],
      ['huge header length', () => craft(p, ok, Buffer.alloc(12), 2n ** 40n), /header length 1099511627776 exceeds the 100000000-byte limit/],
      ['header past end', () => craft(p, ok, Buffer.alloc(0), 5000n), /header length 5000 runs past the end/],
      ['bad JSON', () => craft(p, '{"a": {"dtype": "F32",', Buffer.alloc(0)), /header is not valid JSON/],
      ['not an object', () => craft(p, '[1,2]', Buffer.alloc(0)), /does not start with "\{"/],
      ['missing field', () => craft(p, { a: { dtype: 'F32', shape: [2] } }, Buffer.alloc(8)), /tensor "a": missing field "data_offsets"/],
      ['unknown dtype', () => craft(p, { a: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(2)), /tensor "a": unsupported dtype "F8_E4M3"/],
      ['bad shape', () => craft(p, { a: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, Buffer.alloc(8)), /tensor "a": field "shape"/],
      ['bad offsets', () => craft(p, { a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, Buffer.alloc(8)), /tensor "a": field "data_offsets"/],
      [
        'size mismatch',
        () => craft(p, { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8)),
        /tensor "a": data_offsets \[0, 8\] span 8 bytes but shape \[3\] × F32 \(4 bytes\) needs 12/,
      ],
      ['truncated data', () => craft(p, ok, Buffer.alloc(10)), /tensor "b": data_offsets \[8, 12\] run past the end of the 10-byte data buffer \(truncated/],
      [
        'overlap',
        () => craft(p, { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, Buffer.alloc(8)),
        /tensor "b": data_offsets \[4, 8\] overlap tensor "a"/,
      ],
      ['hole', () => craft(p, { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, Buffer.alloc(8)), /tensor "a": data_offsets start at 4, leaving a hole/],
      ['trailing bytes', () => craft(p, ok, Buffer.alloc(20)), /cover 12 bytes of the 20-byte data buffer \(8 trailing bytes\)/],
      ['bad metadata', () => craft(p, { __metadata__: { step: 3 }, ...ok }, Buffer.alloc(12)), /"__metadata__" field "step" must be a string/],
    ];
    for (const [what, make, re] of cases) {
      make();
      assert.throws(
        () => readSafetensors(p),
        (e: Error) => {
          assert.match(e.message, re, what);
          assert.ok(e.message.includes(p), `${what}: error names the file`);
          return true;
        },
      );
    }
    // a real file cut short
    const full = readFileSync(fixture('tiny-gpt2', 'model.safetensors'));
    writeFileSync(p, full.subarray(0, full.length - 100));
    assert.throws(() => readSafetensors(p), /tensor "transformer\.wte\.weight": data_offsets \[416768, 672768\] run past the end/);
    writeFileSync(p, full.subarray(0, 1000));
    assert.throws(() => readSafetensors(p), /header length 2624 runs past the end of the 1000-byte file/);
  });
});

test('writer validation: shape/data mismatch, wrong array type, reserved and duplicate names, bad BOOL', () => {
  withTmp((dir) => {
    const p = join(dir, 'w.safetensors');
    const bad: [Record<string, WritableEntry>, RegExp][] = [
      [{ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }, /tensor "a": shape \[3\] holds 3 elements, data has 2/],
      [{ a: { dtype: 'I32', shape: [2], data: new Float32Array(2) } }, /tensor "a": dtype I32 needs a Int32Array, got a Float32Array/],
      [{ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, /"__metadata__" is reserved/],
      [{ a: { dtype: 'F9' as 'F32', shape: [1], data: new Float32Array(1) } }, /unsupported dtype "F9"/],
      [{ a: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 2]) } }, /BOOL element 1 is 2/],
    ];
    for (const [t, re] of bad) assert.throws(() => writeSafetensors(p, t), re);
    assert.throws(() => writeSafetensors(p, { a: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, { k: 1 as unknown as string }), /metadata "k" must be a string/);
    assert.deepEqual(readdirSync(dir), [], 'nothing written by failed calls');
  });
});

test('writes are atomic: an error mid-write leaves the old file intact and no temporary file behind', () => {
  withTmp((dir) => {
    const p = join(dir, 'model.safetensors');
    writeSafetensors(p, { a: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
    const before = readFileSync(p);
    // the BOOL check runs while the data is being written, after the header: a failure half-way through the file
    assert.throws(
      () =>
        writeSafetensors(p, {
          a: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) },
          z: { dtype: 'BOOL', shape: [1], data: Uint8Array.from([7]) },
        }),
      /BOOL element 0 is 7/,
    );
    assert.ok(readFileSync(p).equals(before), 'old file unchanged');
    assert.deepEqual(readdirSync(dir), ['model.safetensors'], 'no temporary file left');
    // a fresh path that fails leaves nothing at all
    const q = join(dir, 'new.safetensors');
    assert.throws(() => writeSafetensors(q, { z: { dtype: 'BOOL', shape: [1], data: Uint8Array.from([3]) } }));
    assert.equal(existsSync(q), false);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });
});
