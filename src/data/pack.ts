// Packing for SFT (TRL's "wrapped" strategy): the examples, in order, are concatenated into one token stream
// that is cut into rows of exactly seqLength tokens (the last row may be shorter; it is kept and padded by the
// collator, never dropped). Examples cross row boundaries; masks travel with their tokens.
// Limits (documented in docs/data.md): attention is NOT restricted to each example — a token attends to the
// earlier examples of its row — and positions are not reset at example starts; `docStarts` records where each
// example begins in a row for a future varlen attention. Pack once, then shuffle the rows with the sampler.

import type { SequenceExample } from './tokenize.js';

interface PackedRow extends SequenceExample {
  /** offsets in the row where an example starts */
  docStarts: Int32Array;
}

export function packSequences(examples: readonly SequenceExample[], seqLength: number): PackedRow[] {
  if (!Number.isInteger(seqLength) || seqLength < 1) throw new Error(`packSequences: seqLength must be a positive integer, got ${String(seqLength)}`);
  const withA = examples.filter((e) => e.assistantMask !== undefined).length;
  if (withA !== 0 && withA !== examples.length) throw new Error(`packSequences: ${withA} of ${examples.length} examples have assistant masks; all or none must`);
  let total = 0;
  for (const e of examples) total += e.ids.length;
  const ids = new Int32Array(total);
  const cmask = new Uint8Array(total);
  const amask = withA ? new Uint8Array(total) : null;
  const starts = new Int32Array(examples.length);
  let at = 0;
  examples.forEach((e, k) => {
    starts[k] = at;
    ids.set(e.ids, at);
    cmask.set(e.completionMask, at);
    if (amask) amask.set(e.assistantMask!, at);
    at += e.ids.length;
  });
  const rows: PackedRow[] = [];
  let k = 0; // first example that may start in the current row
  for (let r0 = 0; r0 < total; r0 += seqLength) {
    const r1 = Math.min(r0 + seqLength, total);
    while (k < examples.length && starts[k] + examples[k].ids.length <= r0) k++;
    const docs: number[] = [];
    for (let j = k; j < examples.length && starts[j] < r1; j++) if (starts[j] >= r0) docs.push(starts[j] - r0);
    const row: PackedRow = {
      kind: 'sequence',
      ids: ids.subarray(r0, r1),
      completionMask: cmask.subarray(r0, r1),
      promptLength: 0,
      source: examples[k].source,
      truncated: false,
      docStarts: Int32Array.from(docs),
    };
    if (amask) row.assistantMask = amask.subarray(r0, r1);
    rows.push(row);
  }
  return rows;
}
