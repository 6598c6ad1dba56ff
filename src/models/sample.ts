// Choosing the next token of one sequence from its row of the step's distribution, with the request's own random
// generator: greedy (the most likely token, the lowest id on a tie) or a sample from softmax(logits / T)
// restricted to the top-k tokens and then to the nucleus of top-p mass (transformers' order of the warpers; the
// nucleus is the smallest set of most probable tokens whose mass reaches top_p of what top-k kept, ties at its
// edge included). The nucleus is found by a selection on mass (expected O(V)), not by sorting the vocabulary.
// Also the k most likely tokens of a log-probability row (top_logprobs). Used by generate() and the serving engine.
import type { Random } from '../engine/random.js';

/** The index of the largest value (the first one on a tie). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** The k-th largest value of a (a copy is partitioned). */
function kthLargest(a: Float32Array, k: number): number {
  const x = Float32Array.from(a);
  let lo = 0,
    hi = x.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = x[(lo + hi) >> 1]!;
    let i = lo,
      j = hi;
    while (i <= j) {
      while (x[i]! > pivot) i++;
      while (x[j]! < pivot) j--;
      if (i <= j) {
        const t = x[i]!;
        x[i] = x[j]!;
        x[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return x[target]!;
}

/**
 * The smallest value tau such that the values >= tau hold at least `mass` in all (the edge of the nucleus), by
 * quickselect on accumulated mass. `vals` is reordered. When rounding leaves the total below `mass`, the smallest
 * value (everything is kept).
 */
export function nucleusEdge(vals: Float32Array, mass: number): number {
  let lo = 0,
    hi = vals.length,
    above = 0;
  let smallest = Infinity;
  for (let i = 0; i < vals.length; i++) if (vals[i]! < smallest) smallest = vals[i]!;
  while (lo < hi) {
    const pivot = vals[(lo + hi) >> 1]!;
    // three-way partition of [lo, hi): > pivot | == pivot | < pivot
    let lt = lo,
      i = lo,
      gt = hi;
    while (i < gt) {
      const v = vals[i]!;
      if (v > pivot) {
        vals[i] = vals[lt]!;
        vals[lt] = v;
        lt++;
        i++;
      } else if (v < pivot) {
        gt--;
        vals[i] = vals[gt]!;
        vals[gt] = v;
      } else i++;
    }
    let greater = 0;
    for (let t = lo; t < lt; t++) greater += vals[t]!;
    const equal = (gt - lt) * pivot;
    if (above + greater >= mass) hi = lt;
    else if (above + greater + equal >= mass) return pivot;
    else {
      above += greater + equal;
      lo = gt;
    }
  }
  return smallest;
}

/** A token drawn from the probability row p (already softmax(logits / T)) under top-k and top-p. */
export function sampleRow(p: Float32Array, topK: number | null, topP: number | null, rng: Random): number {
  const V = p.length;
  let tau = 0; // keep p >= tau
  if (topK !== null && topK > 0 && topK < V) tau = kthLargest(p, topK);
  if (topP !== null && topP < 1) {
    let n = 0,
      zk = 0;
    for (let i = 0; i < V; i++) if (p[i]! >= tau) n++;
    const kept = new Float32Array(n);
    n = 0;
    for (let i = 0; i < V; i++)
      if (p[i]! >= tau) {
        kept[n++] = p[i]!;
        zk += p[i]!;
      }
    tau = Math.max(tau, nucleusEdge(kept, topP * zk));
  }
  let mass = 0;
  for (let i = 0; i < V; i++) if (p[i]! >= tau) mass += p[i]!;
  let u = rng.uniform() * mass,
    tok = -1;
  for (let i = 0; i < V; i++) {
    if (p[i]! < tau) continue;
    tok = i;
    u -= p[i]!;
    if (u < 0) break;
  }
  return tok;
}

/** The k largest entries of row as [index, value] pairs, largest first (lower index first on a tie). */
export function topEntries(row: Float32Array, k: number): [number, number][] {
  if (k <= 0) return [];
  const idx: number[] = [],
    val: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (idx.length === k && !(v > val[k - 1]!)) continue;
    let j = idx.length === k ? k - 1 : idx.length;
    while (j > 0 && val[j - 1]! < v) {
      if (j < k) {
        idx[j] = idx[j - 1]!;
        val[j] = val[j - 1]!;
      }
      j--;
    }
    idx[j] = i;
    val[j] = v;
  }
  return idx.map((i, j) => [i, val[j]!]);
}
