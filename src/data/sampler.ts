// A deterministic, resumable epoch iterator over dataset indices: each epoch is a seeded permutation (the same
// seed and epoch always give the same order, independent of how many batches were drawn before), cut into
// batches. Its position {epoch, index} (index = the next batch within the epoch) goes into a checkpoint's
// trainer state; restoring it makes next() return exactly the batch that would have come next.

import { Random } from '../engine/random.js';

interface SamplerOptions {
  /** examples per batch (pairs, for preference data) */
  batchSize: number;
  /** default 0 */
  seed?: number;
  /** default true; false: the dataset order every epoch */
  shuffle?: boolean;
  /** drop the last, smaller batch of each epoch. Default false (every example is seen every epoch). */
  dropLast?: boolean;
}

/** What a checkpoint saves (plain JSON). The sampler's settings are included so that a mismatch on resume is an error. */
export interface SamplerState {
  epoch: number;
  /** the next batch's index within the epoch */
  index: number;
  seed: number;
  size: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
}

interface SampledBatch {
  /** dataset indices of the batch's examples */
  indices: Int32Array;
  epoch: number;
  /** the batch's index within its epoch */
  index: number;
}

/** A uniform integer in [0, n) from 32-bit draws, without modulo bias (n <= 2^32). */
function below(rng: Random, n: number): number {
  const limit = 4294967296 - (4294967296 % n);
  for (;;) {
    const x = rng.nextU32();
    if (x < limit) return x % n;
  }
}

export class EpochSampler {
  readonly size: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly batchesPerEpoch: number;
  private epochNo = 0;
  private batchNo = 0;
  private perm: Int32Array | null = null;
  private permEpoch = -1;

  constructor(size: number, opts: SamplerOptions) {
    if (!Number.isInteger(size) || size < 0) throw new Error(`EpochSampler: size must be a non-negative integer, got ${String(size)}`);
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`EpochSampler: batchSize must be a positive integer, got ${String(opts.batchSize)}`);
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(seed)) throw new Error(`EpochSampler: seed must be an integer, got ${String(seed)}`);
    this.size = size;
    this.batchSize = opts.batchSize;
    this.seed = seed;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.batchesPerEpoch = this.dropLast ? Math.floor(size / this.batchSize) : Math.ceil(size / this.batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new Error(`EpochSampler: no batch can be made from ${size} examples with batchSize ${this.batchSize}${this.dropLast ? ' and dropLast' : ''}`);
    }
  }

  /** The epoch of the next batch. */
  get epoch(): number {
    return this.epochNo;
  }
  /** The index (within its epoch) of the next batch. */
  get index(): number {
    return this.batchNo;
  }

  /** The order of the dataset in an epoch (a pure function of seed and epoch). */
  permutation(epoch: number): Int32Array {
    if (this.permEpoch === epoch && this.perm) return this.perm;
    const p = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) p[i] = i;
    if (this.shuffle) {
      const rng = new Random((this.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
      for (let i = this.size - 1; i > 0; i--) {
        const j = below(rng, i + 1);
        const t = p[i];
        p[i] = p[j];
        p[j] = t;
      }
    }
    this.perm = p;
    this.permEpoch = epoch;
    return p;
  }

  /** The next batch (epochs follow each other without end; the caller stops). */
  next(): SampledBatch {
    const epoch = this.epochNo,
      index = this.batchNo;
    const p = this.permutation(epoch);
    const start = index * this.batchSize;
    const indices = p.slice(start, Math.min(start + this.batchSize, this.size));
    if (++this.batchNo >= this.batchesPerEpoch) {
      this.batchNo = 0;
      this.epochNo++;
    }
    return { indices, epoch, index };
  }

  state(): SamplerState {
    return { epoch: this.epochNo, index: this.batchNo, seed: this.seed, size: this.size, batchSize: this.batchSize, shuffle: this.shuffle, dropLast: this.dropLast };
  }

  /** Continues from a saved state; the settings must match this sampler's (else the order would differ). */
  restore(s: SamplerState): void {
    const bad = (['seed', 'size', 'batchSize', 'shuffle', 'dropLast'] as const).filter((k) => s[k] !== this[k]);
    if (bad.length) {
      throw new Error(
        `EpochSampler.restore: the saved state was made with ${bad.map((k) => `${k} ${String(s[k])}`).join(', ')}, but this sampler has ${bad.map((k) => `${k} ${String(this[k])}`).join(', ')}`,
      );
    }
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.index) || s.index < 0 || s.index >= this.batchesPerEpoch) {
      throw new Error(`EpochSampler.restore: bad position epoch ${String(s.epoch)}, index ${String(s.index)} (batches per epoch: ${this.batchesPerEpoch})`);
    }
    this.epochNo = s.epoch;
    this.batchNo = s.index;
  }
}
