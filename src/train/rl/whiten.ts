// Masked statistics over rollout tensors (plain arrays, float64), as TRL's masked_mean / masked_var /
// masked_whiten: the mean and the unbiased variance of the selected entries, and whitening to zero mean and
// unit variance (optionally keeping the mean, for rewards).

/** Σ(x·m)/Σm over the entries with mask ≠ 0 (NaN when none is selected). */
export function maskedMeanOf(x: ArrayLike<number>, mask: ArrayLike<number>): number {
  check(x, mask, 'maskedMeanOf');
  let s = 0,
    c = 0;
  for (let i = 0; i < x.length; i++)
    if (mask[i]) {
      s += x[i]!;
      c++;
    }
  return c ? s / c : NaN;
}

/** The variance of the selected entries; unbiased (× n/(n−1)) by default, as TRL's masked_var. */
export function maskedVarOf(x: ArrayLike<number>, mask: ArrayLike<number>, unbiased = true): number {
  const m = maskedMeanOf(x, mask);
  let s = 0,
    c = 0;
  for (let i = 0; i < x.length; i++)
    if (mask[i]) {
      const d = x[i]! - m;
      s += d * d;
      c++;
    }
  if (c === 0) return NaN;
  if (!unbiased) return s / c;
  if (c < 2) throw new Error(`maskedVarOf: the unbiased variance needs at least 2 selected entries, got ${c}`);
  return s / (c - 1);
}

/**
 * (x − mean)/sqrt(var + 1e-8) on the selected entries (mean added back when shiftMean is false); the
 * entries outside the mask are 0 in the result.
 */
export function maskedWhiten(x: ArrayLike<number>, mask: ArrayLike<number>, shiftMean = true): Float64Array {
  const mean = maskedMeanOf(x, mask),
    v = maskedVarOf(x, mask);
  const inv = 1 / Math.sqrt(v + 1e-8);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) if (mask[i]) out[i] = (x[i]! - mean) * inv + (shiftMean ? 0 : mean);
  return out;
}

function check(x: ArrayLike<number>, mask: ArrayLike<number>, op: string): void {
  if (x.length !== mask.length) throw new Error(`${op}: ${x.length} values but ${mask.length} mask entries`);
}
