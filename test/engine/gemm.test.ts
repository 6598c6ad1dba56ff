// The native SGEMM kernels (sgemm, sgemmBatched) against a float64 reference: every transpose layout, odd
// sizes, padded leading dimensions, offsets, alpha/beta (beta = 0 must not read C), batches with a shared or
// strided B, the serial/parallel/threaded splits, and the portable path (ALIGNKIT_PORTABLE=1, child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { core } from '../../src/engine/native.js';
import { gemm } from '../../src/engine/ops/matmul.js';
import { readFileSync } from 'node:fs';
import { Random } from '../../src/engine/random.js';
import { ALPHA_BETA, LAYOUTS, base, checkCase, randF32 } from './gemm-cases.js';

const PORTABLE_CHILD = process.env.ALIGNKIT_GEMM_TEST_CHILD === '1';
const SIZES = [1, 7, 33, 129, 200] as const;

test('isa reports the path in use', () => {
  const isa = core.isa();
  if (PORTABLE_CHILD) {
    assert.equal(isa, 'portable');
    console.log('gemm-child isa=portable');
  } else {
    assert.equal(isa, expectedIsa(), 'the path the CPU flags (/proc/cpuinfo) and the environment call for');
  }
});

/** The kernels this CPU should get: the flags the addon checks, read from /proc/cpuinfo, and the opt-outs. */
function expectedIsa(): string {
  const on = (v: string | undefined) => !!v && v !== '0';
  const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
  if (on(process.env.ALIGNKIT_PORTABLE) || !(flags.has('avx2') && flags.has('fma'))) return 'portable';
  if (!on(process.env.ALIGNKIT_NO_AVX512) && ['avx512f', 'avx512bw', 'avx512vl', 'avx512_bf16'].every((x) => flags.has(x))) return 'avx512bf16';
  return 'avx2';
}

test('sgemm: all four layouts, sizes {1,7,33,129,200} mixed, padded ld, offsets, alpha/beta', () => {
  const rng = new Random(11);
  let n = 0;
  for (const [ta, tb] of LAYOUTS)
    for (const M of SIZES)
      for (const N of SIZES)
        for (const K of SIZES) {
          // every (M, N, K) combination; the other parameters vary cyclically
          const c = base(ta, tb, M, N, K);
          [c.alpha, c.beta] = ALPHA_BETA[n % ALPHA_BETA.length]!;
          if (n % 2) {
            c.padA = 3;
            c.padB = 5;
            c.padC = 2;
          }
          if (n % 3 === 1) {
            c.offA = 5;
            c.offB = 2;
            c.offC = 7;
          }
          checkCase(c, rng);
          n++;
        }
  assert.equal(n, 4 * SIZES.length ** 3);
});

test('sgemm: blocked paths (K past one KC block, N past one NC block, many M blocks)', () => {
  const rng = new Random(12);
  for (const [ta, tb] of LAYOUTS) {
    checkCase({ ...base(ta, tb, 37, 45, 800), beta: 1, padA: 1, padC: 3 }, rng); // 3 K blocks, beta=1 on the later ones
    checkCase({ ...base(ta, tb, 13, 3100, 20), alpha: 0.5, padB: 4 }, rng); // 2 N blocks, short M (shared A, split N)
    checkCase({ ...base(ta, tb, 611, 70, 401), beta: -0.5, offA: 1, offB: 1, offC: 1 }, rng); // many M blocks
  }
});

test('sgemm: a few rows or columns (M or N up to 8, matrix-vector-like), every layout', () => {
  const rng = new Random(16);
  let n = 0;
  for (const [ta, tb] of LAYOUTS)
    for (const few of [1, 2, 3, 4, 5, 6, 7, 8])
      for (const [other, K] of [
        [5, 3],
        [70, 9],
        [203, 130],
        [1000, 40],
        [37, 512],
        [300, 777],
      ] as const) {
        const [alpha, beta] = ALPHA_BETA[n % ALPHA_BETA.length]!;
        const pads = n % 2 ? { padA: 2, padB: 3, padC: 1 } : {};
        checkCase({ ...base(ta, tb, few, other, K), alpha, beta, ...pads, offC: n % 3 }, rng);
        checkCase({ ...base(ta, tb, other, few, K), alpha, beta, ...pads, offA: n % 3 }, rng);
        n++;
      }
});

test('sgemm: a few rows with a long K (split over K) gives bitwise the same result on 1, 2 and 3 threads', () => {
  const before = core.getThreads();
  const rng = new Random(21);
  const M = 8,
    N = 3072,
    K = 768;
  const A = randF32(M * K, rng),
    B = randF32(K * N, rng);
  const results: Float32Array[] = [];
  try {
    for (const t of [1, 2, 3]) {
      core.setThreads(t);
      const C = new Float32Array(M * N);
      gemm.sgemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C, 0, N);
      results.push(C);
    }
  } finally {
    core.setThreads(before);
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
});

test('sgemm: degenerate shapes and alpha = 0', () => {
  const rng = new Random(13);
  checkCase({ ...base(false, false, 5, 9, 0), beta: 0.5 }, rng); // K = 0: C = beta·C
  checkCase({ ...base(true, false, 5, 9, 0), beta: 0 }, rng); // K = 0, beta = 0: C = 0
  checkCase({ ...base(false, true, 6, 17, 4), alpha: 0, beta: 2 }, rng);
  checkCase(base(false, false, 0, 5, 3), rng);
  checkCase(base(false, false, 4, 0, 3), rng);
  checkCase(base(false, false, 1, 1, 1), rng);
});

test('sgemm: same results with 1 and 3 threads as with the default pool', () => {
  const before = core.getThreads();
  try {
    for (const t of [1, 3]) {
      core.setThreads(t);
      const rng = new Random(14 + t);
      checkCase({ ...base(false, true, 129, 200, 33), padC: 1 }, rng);
      checkCase({ ...base(true, false, 611, 45, 129), beta: 1 }, rng);
      checkCase({ ...base(false, false, 7, 1000, 129) }, rng);
      checkCase({ ...base(false, false, 4, 8, 3), batch: 9, gap: 2 }, rng);
    }
  } finally {
    core.setThreads(before);
  }
});

test('sgemmBatched: strided and shared B, small and large matrices, every layout', () => {
  const rng = new Random(15);
  let n = 0;
  for (const [ta, tb] of LAYOUTS) {
    // small matrices, batch split over threads
    checkCase({ ...base(ta, tb, 7, 33, 7), batch: 5, gap: 3, padA: 1 }, rng);
    checkCase({ ...base(ta, tb, 33, 7, 129), batch: 4, sharedB: true, beta: 1, offB: 3 }, rng);
    checkCase({ ...base(ta, tb, 1, 1, 1), batch: 3, gap: 0 }, rng);
    // large matrices with a batch that does not divide over the threads: one parallel product per matrix
    checkCase({ ...base(ta, tb, 129, 129, 129), batch: 3, gap: 1, sharedB: n % 2 === 1, alpha: 0.75, beta: 0.5 }, rng);
    n++;
  }
  // batch = 0 is a no-op and reads nothing
  const C = new Float32Array(4).fill(7);
  gemm.sgemmBatched(false, false, 2, 2, 2, 1, new Float32Array(0), 0, 2, 4, new Float32Array(0), 0, 2, 4, 0, C, 0, 2, 4, 0);
  assert.deepEqual(Array.from(C), [7, 7, 7, 7]);
});

test('sgemm: clear errors for short buffers and bad leading dimensions', () => {
  const a = new Float32Array(6),
    b = new Float32Array(6),
    c = new Float32Array(4);
  assert.throws(() => gemm.sgemm(false, false, 2, 2, 3, 1, a, 1, 3, b, 0, 2, 0, c, 0, 2), /too short/);
  assert.throws(() => gemm.sgemm(false, false, 2, 2, 3, 1, a, 0, 2, b, 0, 2, 0, c, 0, 2), /sgemm: leading dimension too small/);
  assert.throws(() => gemm.sgemm(false, false, 2, 2, 3, 1, a, 0, 3, b, 0, 2, 0, c, 0, 1), /leading dimension/);
  assert.throws(() => gemm.sgemm(false, false, -1, 2, 3, 1, a, 0, 3, b, 0, 2, 0, c, 0, 2), /non-negative integer/);
});

if (!PORTABLE_CHILD) {
  test('portable path: the same checks pass in a child process with ALIGNKIT_PORTABLE=1', () => {
    const self = fileURLToPath(import.meta.url);
    const env: NodeJS.ProcessEnv = { ...process.env, ALIGNKIT_PORTABLE: '1', ALIGNKIT_GEMM_TEST_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT; // run as a plain script that prints TAP, not as a child of this runner
    const r = spawnSync(process.execPath, ['--test-reporter=tap', self], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, `portable child failed:\n${out.slice(-4000)}`);
    assert.match(out, /gemm-child isa=portable/);
    assert.match(out, /# fail 0/);
  });
}
