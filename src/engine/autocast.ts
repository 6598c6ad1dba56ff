// Mixed precision, as torch.autocast('cpu', dtype=torch.bfloat16) does it: inside `autocast('bf16', fn)` every
// matrix product (linear layers, LoRA, the LM head, and the backward products of each) rounds its two inputs to
// bf16 while the GEMM packs them and accumulates in fp32; its output stays fp32. Weights stay fp32 masters, and
// every other op (norms, softmax, log-softmax, losses, attention and its softmax statistics, AdamW) runs in fp32
// as always. A product records the precision it ran in, and its backward products use the same one, so
// `loss.backward()` may be called outside the autocast block (as in PyTorch).
//
// The bf16 kernels need AVX512_BF16 (vdpbf16ps). Without it (or with ALIGNKIT_PORTABLE / ALIGNKIT_NO_AVX512 set)
// a bf16 request runs the float32 kernels instead, and the process prints one notice saying so.
import { core } from './native.js';

export type Precision = 'fp32' | 'bf16';

let current: Precision = 'fp32';
let noticed = false;

/** Whether bf16 products really run in bf16 here (the CPU has AVX512_BF16 and no override disables it). */
export function bf16Supported(): boolean {
  return core.isa() === 'avx512bf16';
}

/** The precision matrix products use now. */
export function matmulPrecision(): Precision {
  return current;
}

/** Prints, once per process, that bf16 was asked for but products run in float32. */
export function noteBf16Fallback(): void {
  if (noticed || bf16Supported()) return;
  noticed = true;
  const why = core.isa() === 'portable' ? 'the portable kernels are in use (ALIGNKIT_PORTABLE or no AVX2)' : 'this CPU has no AVX512_BF16 (or ALIGNKIT_NO_AVX512 is set)';
  process.stderr.write(`alignkit: bf16 was requested, but ${why}; matrix products run in float32 instead\n`);
}

/**
 * Runs fn with matrix products in `precision` ('bf16': bf16 inputs, fp32 accumulation and output; 'fp32': plain
 * float32), restoring the previous precision afterwards. Nested calls take the innermost precision.
 */
export function autocast<T>(precision: Precision, fn: () => T): T {
  if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`autocast: precision must be 'fp32' or 'bf16', got '${String(precision)}'`);
  if (precision === 'bf16') noteBf16Fallback();
  const prev = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/**
 * autocast for work that awaits (a training step that scores rollouts through an async reward function): the
 * precision holds until fn's promise settles. Meant for one piece of work at a time, as a training loop runs.
 */
export async function autocastAsync<T>(precision: Precision, fn: () => Promise<T>): Promise<T> {
  if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`autocast: precision must be 'fp32' or 'bf16', got '${String(precision)}'`);
  if (precision === 'bf16') noteBf16Fallback();
  const prev = current;
  current = precision;
  try {
    return await fn();
  } finally {
    current = prev;
  }
}
