// Test helpers: random inputs, closeness with a clear report, and finite-difference gradient checks.
import assert from 'node:assert/strict';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { Random } from '../../src/engine/random.js';

/** Odd sizes that catch edge handling in blocked and vectorised kernels. */
export const ODD_SIZES = [1, 7, 33, 129] as const;

export function randArray(n: number, rng: Random, scale = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** A float32 tensor holding the given values (rounded to float32). */
export function tensorOf(values: ArrayLike<number>, shape: readonly number[], requiresGrad = false): Tensor {
  const t = Tensor.from(values, shape);
  return requiresGrad ? Tensor.param(t) : t;
}

/** The float32-rounded values of a float64 array, as float64 (so the reference sees what the kernel sees). */
export function f32round(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}

/**
 * Asserts |actual − expected| <= atol + rtol·|expected| elementwise, and reports the worst element.
 * Returns the worst relative error seen (for notes).
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: { rtol?: number; atol?: number } = {}, what = 'values'): number {
  const rtol = opts.rtol ?? 1e-4,
    atol = opts.atol ?? 1e-5;
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs expected ${expected.length}`);
  let worst = -1,
    worstExcess = 0,
    worstRel = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e)) assert.fail(`${what}[${i}]: got ${a}, expected ${e}`);
    if (Number.isNaN(a)) continue;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) assert.fail(`${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    const err = Math.abs(a - e);
    const excess = err - (atol + rtol * Math.abs(e));
    worstRel = Math.max(worstRel, err / Math.max(Math.abs(e), 1e-30));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0)
    assert.fail(
      `${what}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} (|diff| ${Math.abs(actual[worst]! - expected[worst]!).toExponential(3)} > atol ${atol} + rtol ${rtol}·|expected|)`,
    );
  return worstRel;
}

/** Relative error by norm: ‖a − e‖ / max(‖e‖, tiny). */
export function relNormError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i]! - expected[i]!;
    num += d * d;
    den += expected[i]! * expected[i]!;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/**
 * Central finite differences of a scalar function of several float64 arrays. Used to check the float64
 * reference backward passes tightly.
 */
export function finiteDiff(f: (xs: Float64Array[]) => number, xs: Float64Array[], eps = 1e-6): Float64Array[] {
  return xs.map((x) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      x[i] = v + eps;
      const up = f(xs);
      x[i] = v - eps;
      const down = f(xs);
      x[i] = v;
      g[i] = (up - down) / (2 * eps);
    }
    return g;
  });
}

/**
 * Checks the native backward of `build` against central finite differences of the native forward
 * (float32, so the tolerance is loose): L = Σ out·R for a fixed random R. `inputs` must require grad.
 * Only up to `maxProbe` elements per input are probed, spread over the input.
 */
export function nativeGradcheck(build: (inputs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; rtol?: number; atol?: number; seed?: number; maxProbe?: number } = {}): void {
  const eps = opts.eps ?? 1e-2,
    rtol = opts.rtol ?? 5e-2,
    atol = opts.atol ?? 5e-3;
  const rng = new Random(opts.seed ?? 7);
  for (const t of inputs) t.zeroGrad();
  let R: Float64Array = new Float64Array(0);
  tidy(() => {
    const out = build(inputs);
    R = randArray(out.size, rng);
    out.backward(Tensor.from(R, out.shape));
  });
  const loss = (): number =>
    tidy(() =>
      noGrad(() => {
        const o = build(inputs).toArray();
        let s = 0;
        for (let i = 0; i < o.length; i++) s += o[i]! * R[i]!;
        return s;
      }),
    );
  inputs.forEach((t, k) => {
    assert.ok(t.grad, `input ${k} got no gradient`);
    const analytic = t.grad.toArray();
    const n = t.size;
    const probes = Math.min(n, opts.maxProbe ?? 24);
    const data = t.data;
    for (let p = 0; p < probes; p++) {
      const i = t.offset + Math.floor((p * n) / probes);
      const v = data[i]!;
      const h = eps * Math.max(1, Math.abs(v));
      data[i] = v + h;
      const up = loss();
      data[i] = v - h;
      const down = loss();
      data[i] = v;
      const numeric = (up - down) / (2 * h);
      const a = analytic[i - t.offset]!;
      const tol = atol + rtol * Math.max(Math.abs(numeric), Math.abs(a));
      assert.ok(Math.abs(a - numeric) <= tol, `input ${k} element ${i - t.offset}: backward gives ${a}, finite differences ${numeric}`);
    }
  });
}
