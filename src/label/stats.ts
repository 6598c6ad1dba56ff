// Statistics of a feedback database: labels per annotator and round, inter-annotator agreement on pairs labeled
// by two (or more) annotators, and position bias (how often the response shown on the left wins).
import type { Choice, FeedbackDB, LabelRow } from './db.js';

interface AnnotatorCount {
  round: number;
  annotator: string;
  labels: number;
  a: number;
  b: number;
  tie: number;
  both_bad: number;
}

interface Agreement {
  /** pairs with labels from at least two annotators */
  items: number;
  /** pairs of labels (two annotators, one item) compared */
  comparisons: number;
  /** share of those comparisons where both chose the same (a, b, tie, both bad) */
  observed: number | null;
  /** chance-corrected: (observed − expected) / (1 − expected), expected from the pooled choice shares (Fleiss) */
  kappa: number | null;
}

interface PositionBias {
  /** labels that preferred one response (not ties, not both bad) */
  decisive: number;
  leftWins: number;
  /** leftWins / decisive (0.5 when there is no bias) */
  rate: number | null;
  /** 95% Wilson interval of the rate */
  ci95: [number, number] | null;
}

interface RoundStats {
  round: number;
  pairs: number;
  sampling: number;
  failed: number;
  labels: number;
  agreement: Agreement;
  positionBias: PositionBias;
}

interface Stats {
  annotators: AnnotatorCount[];
  rounds: RoundStats[];
  overall: { labels: number; agreement: Agreement; positionBias: PositionBias };
}

const CHOICES: readonly Choice[] = ['a', 'b', 'tie', 'both_bad'];

export function computeStats(store: FeedbackDB, round?: number): Stats {
  const rows = store.labelRows(round);
  const counts = new Map<string, AnnotatorCount>();
  for (const r of rows) {
    const key = `${r.round}\u0000${r.annotator}`;
    let c = counts.get(key);
    if (!c) counts.set(key, (c = { round: r.round, annotator: r.annotator, labels: 0, a: 0, b: 0, tie: 0, both_bad: 0 }));
    c.labels++;
    c[r.choice]++;
  }
  const annotators = [...counts.values()].sort((x, y) => x.round - y.round || x.annotator.localeCompare(y.annotator));
  const rounds = store
    .roundCounts()
    .filter((c) => round === undefined || c.round === round)
    .map((c) => {
      const mine = rows.filter((r) => r.round === c.round);
      return { round: c.round, pairs: c.pairs, sampling: c.pending, failed: c.failed, labels: mine.length, agreement: agreement(mine), positionBias: positionBias(mine) };
    });
  return { annotators, rounds, overall: { labels: rows.length, agreement: agreement(rows), positionBias: positionBias(rows) } };
}

/** Agreement over every two labels of one pair (labels of one pair always come from different annotators). */
export function agreement(rows: readonly LabelRow[]): Agreement {
  const byPair = new Map<number, Choice[]>();
  for (const r of rows) {
    const l = byPair.get(r.pairId);
    if (l) l.push(r.choice);
    else byPair.set(r.pairId, [r.choice]);
  }
  let items = 0,
    comparisons = 0,
    agree = 0;
  const pooled = new Map<Choice, number>();
  let pooledN = 0;
  for (const labels of byPair.values()) {
    if (labels.length < 2) continue;
    items++;
    for (let i = 0; i < labels.length; i++) {
      pooled.set(labels[i]!, (pooled.get(labels[i]!) ?? 0) + 1);
      pooledN++;
      for (let j = i + 1; j < labels.length; j++) {
        comparisons++;
        if (labels[i] === labels[j]) agree++;
      }
    }
  }
  if (comparisons === 0) return { items, comparisons, observed: null, kappa: null };
  const observed = agree / comparisons;
  let expected = 0;
  for (const c of CHOICES) expected += ((pooled.get(c) ?? 0) / pooledN) ** 2;
  const kappa = expected >= 1 ? null : (observed - expected) / (1 - expected);
  return { items, comparisons, observed, kappa };
}

export function positionBias(rows: readonly LabelRow[]): PositionBias {
  let decisive = 0,
    leftWins = 0;
  for (const r of rows) {
    if (r.choice !== 'a' && r.choice !== 'b') continue;
    decisive++;
    if ((r.choice === 'a') === r.leftIsA) leftWins++;
  }
  if (decisive === 0) return { decisive, leftWins, rate: null, ci95: null };
  const p = leftWins / decisive,
    z = 1.959964,
    n = decisive;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return { decisive, leftWins, rate: p, ci95: [Math.max(0, centre - half), Math.min(1, centre + half)] };
}

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null) => (x === null ? '-' : x.toFixed(3));

/** The statistics as plain text tables. */
export function formatStats(s: Stats): string {
  const out: string[] = [];
  const table = (head: string[], rows: (string | number)[][]) => {
    const cells = [head, ...rows.map((r) => r.map(String))];
    const w = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
    for (const r of cells)
      out.push(
        r
          .map((c, i) => (i === 0 || i === 1 ? c.padEnd(w[i]!) : c.padStart(w[i]!)))
          .join('  ')
          .trimEnd(),
      );
  };
  out.push('labels per annotator and round');
  if (s.annotators.length === 0) out.push('  (no labels yet)');
  else
    table(
      ['round', 'annotator', 'labels', 'a', 'b', 'tie', 'both_bad'],
      s.annotators.map((c) => [c.round, c.annotator, c.labels, c.a, c.b, c.tie, c.both_bad]),
    );
  out.push('', 'rounds');
  table(
    ['round', 'pairs', 'labels', 'sampling', 'failed', 'agree_items', 'agreement', 'kappa', 'left_wins', 'left_rate'],
    s.rounds.map((r) => [
      r.round,
      r.pairs,
      r.labels,
      r.sampling,
      r.failed,
      r.agreement.items,
      pct(r.agreement.observed),
      num(r.agreement.kappa),
      `${r.positionBias.leftWins}/${r.positionBias.decisive}`,
      pct(r.positionBias.rate),
    ]),
  );
  const a = s.overall.agreement,
    b = s.overall.positionBias;
  out.push('');
  out.push(`inter-annotator agreement: ${a.items} pairs labeled twice or more, ${a.comparisons} comparisons, agreement ${pct(a.observed)}, Fleiss' kappa ${num(a.kappa)}`);
  out.push(
    `position bias: the left response won ${b.leftWins} of ${b.decisive} decisive labels (${pct(b.rate)}` + (b.ci95 ? `, 95% interval ${pct(b.ci95[0])}-${pct(b.ci95[1])}; 50% means no bias)` : ')'),
  );
  return out.join('\n') + '\n';
}
