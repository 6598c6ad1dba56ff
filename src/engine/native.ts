// Loads the native addon built by node-gyp during `npm ci`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

export { packageRoot };

const require = createRequire(import.meta.url);
const addonPath = join(packageRoot(), 'build', 'Release', 'alignkit.node');
if (!existsSync(addonPath)) {
  throw new Error(`alignkit: the native engine is not built (${addonPath} is missing); run \`npm ci\` or \`npm run build:native\``);
}

/** Raw native functions. Each ops file declares the typed slice it uses. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const native: Record<string, (...args: any[]) => any> = require(addonPath);

interface CoreKernels {
  fill(dst: Float32Array, off: number, n: number, value: number): void;
  /** dst may be a Uint16Array: the values are then stored as bf16 (rounded to nearest even) */
  copyStrided(src: Float32Array, srcOff: number, shape: readonly number[], strides: readonly number[], dst: Float32Array | Uint16Array, dstOff: number, dstStrides?: readonly number[]): void;
  axpy(y: Float32Array, yOff: number, x: Float32Array, xOff: number, n: number, alpha: number): void;
  release(a: Float32Array | Int32Array | Uint8Array | Uint16Array): void;
  getThreads(): number;
  setThreads(n: number): void;
  /** 'avx512bf16': AVX2 kernels plus the bf16 GEMM; 'avx2'; 'portable' (plain C++) */
  isa(): 'avx512bf16' | 'avx2' | 'portable';
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  sumSquares(x: Float32Array, off: number, n: number): number;
  scaleInPlace(x: Float32Array, off: number, n: number, s: number): void;
}
export const core = native as unknown as CoreKernels;
