// Batches of tokenised examples: a seeded, resumable order for training (the data layer's EpochSampler) and
// consecutive batches in order for evaluation and precomputation.
import { EpochSampler, type SamplerState } from '../data/index.js';

/** Batches in a resumable order: next() gives null at the end of an epoch (the next call starts the next one). */
export class ExampleBatches<E, B> {
  readonly sampler: EpochSampler;
  /** the last batch of an epoch was handed out: the next call reports the epoch's end */
  private atEnd = false;

  constructor(
    readonly examples: readonly E[],
    private readonly collate: (examples: E[], indices: Int32Array) => B,
    opts: { batchSize: number; seed: number; shuffle?: boolean },
  ) {
    this.sampler = new EpochSampler(examples.length, { batchSize: opts.batchSize, seed: opts.seed, shuffle: opts.shuffle ?? true });
  }

  /** batches in one epoch */
  get length(): number {
    return this.sampler.batchesPerEpoch;
  }

  next(): B | null {
    if (this.atEnd) {
      this.atEnd = false;
      return null;
    }
    const { indices } = this.sampler.next();
    if (this.sampler.index === 0) this.atEnd = true;
    return this.collate(
      Array.from(indices, (i) => this.examples[i]!),
      indices,
    );
  }

  /** Position within the epoch as a fraction (for the logged epoch). */
  get progress(): number {
    return this.length > 0 ? (this.atEnd ? 1 : this.sampler.index / this.length) : 0;
  }

  getState(): { index: number; atEnd: boolean; sampler: SamplerState } {
    return { index: this.atEnd ? this.length : this.sampler.index, atEnd: this.atEnd, sampler: this.sampler.state() };
  }

  setState(state: unknown): void {
    const s = state as { atEnd?: unknown; sampler?: SamplerState } | null;
    if (!s || typeof s !== 'object' || !s.sampler) throw new Error('checkpoint data_state is not a batch position');
    this.sampler.restore(s.sampler);
    this.atEnd = s.atEnd === true;
  }
}

/** Consecutive batches of a dataset in order (evaluation, precomputation). */
export function* inOrder<E>(examples: readonly E[], batchSize: number): Generator<{ batch: E[]; indices: Int32Array }> {
  for (let s = 0; s < examples.length; s += batchSize) {
    const e = Math.min(examples.length, s + batchSize);
    yield { batch: examples.slice(s, e), indices: Int32Array.from({ length: e - s }, (_, k) => s + k) };
  }
}
