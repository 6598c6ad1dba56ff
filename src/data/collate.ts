// Batches: examples right-padded into flat row-major [B·T] arrays. The loss mask is already shifted for
// next-token log-probs: lossMask[b, t] = 1 when the token at t + 1 is a loss token, so that the logits at
// position t (which predict token t + 1) are the ones that count; the last real position and padding are 0.
// Preference batches hold both sequences of every pair, interleaved by default: rows
// [chosen0, rejected0, chosen1, rejected1, ...] (one forward pass serves both); 'halves' puts all chosen rows
// first, then all rejected rows.

import type { PreferenceExample, PromptExample, SequenceExample } from './tokenize.js';

export interface Batch {
  /** token ids [B·T], row-major, padded with padId */
  ids: Int32Array;
  /** 1 on real tokens, 0 on padding [B·T] */
  attentionMask: Int32Array;
  /** 1 where position t's NEXT token (t + 1) is a loss token [B·T] */
  lossMask: Float32Array;
  /** next-token targets [B·T]: targets[b, t] = ids[b, t + 1]; padId in the last column (where lossMask is 0) */
  targets: Int32Array;
  B: number;
  T: number;
  /** real tokens per row [B] */
  lengths: Int32Array;
}

export interface PreferenceBatch extends Batch {
  /** number of pairs (B = 2·pairs) */
  pairs: number;
  layout: PreferenceLayout;
  /** row of pair i's chosen / rejected sequence [pairs] */
  chosenRows: Int32Array;
  rejectedRows: Int32Array;
  /** prompt tokens at the start of each row [B] (the same for a pair's two rows) */
  promptLengths: Int32Array;
}

export type PreferenceLayout = 'interleaved' | 'halves';

interface PadOptions {
  /** the pad id (padTokenId(tokenizer): pad, else EOS, else 0) */
  padId: number;
  /** round T up to a multiple of this */
  padToMultipleOf?: number;
  /** a fixed T (at least the longest row; rounded up by padToMultipleOf) */
  padTo?: number;
}

interface SequenceCollateOptions extends PadOptions {
  /** loss on completion tokens only (completionMask); false: on every real token. Default true. */
  completionOnlyLoss?: boolean;
  /** loss on assistant tokens only (assistantMask; every example must have one). Default false. */
  assistantOnlyLoss?: boolean;
}

interface PreferenceCollateOptions extends PadOptions {
  /** default 'interleaved' */
  layout?: PreferenceLayout;
}

function rowLength(longest: number, o: PadOptions): number {
  if (!Number.isInteger(o.padId)) throw new Error(`collate: padId must be an integer, got ${String(o.padId)}`);
  let T = longest;
  if (o.padTo !== undefined) {
    if (o.padTo < longest) throw new Error(`collate: padTo ${o.padTo} is shorter than the longest row (${longest} tokens)`);
    T = o.padTo;
  }
  const m = o.padToMultipleOf;
  if (m !== undefined && m > 1 && T % m) T += m - (T % m);
  return Math.max(T, 1);
}

/** Writes rows into a batch: row i is the concatenation of parts[i] (ids + per-token loss flag). */
function fill(rows: number, parts: (i: number) => Array<{ ids: ArrayLike<number>; loss: ArrayLike<number> | number }>, o: PadOptions): Batch {
  const lengths = new Int32Array(rows);
  const all: Array<Array<{ ids: ArrayLike<number>; loss: ArrayLike<number> | number }>> = [];
  for (let i = 0; i < rows; i++) {
    const p = parts(i);
    all.push(p);
    lengths[i] = p.reduce((s, q) => s + q.ids.length, 0);
  }
  const T = rowLength(rows ? Math.max(...lengths) : 0, o);
  const ids = new Int32Array(rows * T).fill(o.padId);
  const attentionMask = new Int32Array(rows * T);
  const lossMask = new Float32Array(rows * T);
  for (let i = 0; i < rows; i++) {
    const base = i * T;
    let t = 0;
    for (const q of all[i]) {
      const n = q.ids.length;
      for (let k = 0; k < n; k++, t++) {
        ids[base + t] = q.ids[k];
        attentionMask[base + t] = 1;
        const isLoss = typeof q.loss === 'number' ? q.loss : q.loss[k];
        // token t is a loss token: the prediction made at t - 1 counts
        if (isLoss && t > 0) lossMask[base + t - 1] = 1;
      }
    }
  }
  const targets = new Int32Array(rows * T);
  for (let i = 0; i < rows; i++) {
    targets.set(ids.subarray(i * T + 1, (i + 1) * T), i * T);
    targets[(i + 1) * T - 1] = o.padId;
  }
  return { ids, attentionMask, lossMask, targets, B: rows, T, lengths };
}

/** The per-token loss flags of a sequence example under the options. */
function lossFlags(e: SequenceExample, o: SequenceCollateOptions, i: number): ArrayLike<number> | number {
  const completion = o.completionOnlyLoss ?? true;
  if (!o.assistantOnlyLoss) return completion ? e.completionMask : 1;
  const a = e.assistantMask;
  if (!a) throw new Error(`collate: assistantOnlyLoss needs assistant masks, but example ${i} (${e.source.file}:${e.source.line}) has none (tokenise conversational data with assistantMasks: true)`);
  if (!completion) return a;
  const both = new Uint8Array(a.length);
  for (let k = 0; k < a.length; k++) both[k] = a[k] & e.completionMask[k];
  return both;
}

/** SFT batch: one row per example, right-padded. */
export function collateSequences(examples: readonly SequenceExample[], o: SequenceCollateOptions): Batch {
  return fill(examples.length, (i) => [{ ids: examples[i].ids, loss: lossFlags(examples[i], o, i) }], o);
}

/** Preference batch: two rows per pair (prompt ++ chosen, prompt ++ rejected), loss on the completion tokens. */
export function collatePreference(examples: readonly PreferenceExample[], o: PreferenceCollateOptions): PreferenceBatch {
  const layout = o.layout ?? 'interleaved';
  if (layout !== 'interleaved' && layout !== 'halves') throw new Error(`collatePreference: layout must be 'interleaved' or 'halves', got ${JSON.stringify(layout)}`);
  const n = examples.length;
  const chosenRows = new Int32Array(n),
    rejectedRows = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    chosenRows[i] = layout === 'interleaved' ? 2 * i : i;
    rejectedRows[i] = layout === 'interleaved' ? 2 * i + 1 : n + i;
  }
  const pairOf = (row: number) => (layout === 'interleaved' ? row >> 1 : row % n);
  const isChosen = (row: number) => (layout === 'interleaved' ? (row & 1) === 0 : row < n);
  const b = fill(
    2 * n,
    (row) => {
      const e = examples[pairOf(row)];
      return [
        { ids: e.promptIds, loss: 0 },
        { ids: isChosen(row) ? e.chosenIds : e.rejectedIds, loss: 1 },
      ];
    },
    o,
  );
  const promptLengths = new Int32Array(2 * n);
  for (let row = 0; row < 2 * n; row++) promptLengths[row] = examples[pairOf(row)].promptIds.length;
  return { ...b, pairs: n, layout, chosenRows, rejectedRows, promptLengths };
}

interface PromptBatch {
  ids: Int32Array;
  attentionMask: Int32Array;
  B: number;
  T: number;
  lengths: Int32Array;
  /** where the padding went */
  side: 'left' | 'right';
}

/** Prompts padded into [B·T] (right by default; left puts every prompt's last token in column T - 1). */
export function collatePrompts(examples: readonly PromptExample[], o: PadOptions & { side?: 'left' | 'right' }): PromptBatch {
  const side = o.side ?? 'right';
  const b = fill(examples.length, (i) => [{ ids: examples[i].promptIds, loss: 0 }], o);
  if (side === 'left') {
    const { ids, attentionMask, T } = b;
    for (let i = 0; i < b.B; i++) {
      const n = b.lengths[i],
        base = i * T;
      ids.copyWithin(base + T - n, base, base + n);
      ids.fill(o.padId, base, base + T - n);
      attentionMask.fill(0, base, base + T - n);
      attentionMask.fill(1, base + T - n, base + T);
    }
  }
  return { ids: b.ids, attentionMask: b.attentionMask, B: b.B, T: b.T, lengths: b.lengths, side };
}
