// Export of the labels as a preference dataset in TRL's format: one JSON line with "prompt", "chosen", "rejected"
// (text, or chat messages when the prompt is conversational). By default one row per pair by majority vote
// (`aggregate: majority`), with `soft_label` — the fraction of the pair's decisive votes that prefer `chosen`,
// which the reward and DPO trainers read — and pairs whose votes tie are dropped and counted;
// `drop-disagreements` keeps only pairs whose annotators all agree; `all` writes one row per label (each a vote,
// no soft label). Every row says whether simulated annotators (`label simulate`) gave its votes: `simulated` is
// true for a label of a simulated annotator, and for a pair when any of its votes is one. Ties and both-bad labels never make a row; a pair whose two responses are the same text is
// never exported (counted); a file has one format: when some prompts are conversations, text prompts are written
// as a single user message (counted), since TRL's loaders (and alignkit's) refuse a mix. The output may not be
// the database, its -wal/-shm files or a round's input file.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { assertNotAnInput } from '../io/paths.js';
import { type ExportRow, type FeedbackDB, StoreError } from './db.js';
import { hiddenCharacters } from './hidden-chars.js';

type Aggregate = 'majority' | 'all' | 'drop-disagreements';

interface ExportCounts {
  /** preference rows written */
  written: number;
  /** labels (aggregate all) or pairs whose labels were all ties */
  ties: number;
  bothBad: number;
  /** pairs left out because both responses are the same text */
  identical: number;
  /** pairs left out because their annotators disagreed (a tie of votes with majority; any with drop-disagreements) */
  disagreements: number;
  /** text prompts written as a single user message, because other labels' prompts are conversations */
  converted: number;
  /** pairs written whose prompt or responses hold hidden characters (bidi controls, zero-width; see hidden-chars.ts) */
  hidden: number;
  /** rows written that hold a simulated annotator's label (a simulated vote, with majority or drop-disagreements) */
  simulated: number;
}

function hasHidden(r: ExportRow): boolean {
  const prompt = typeof r.prompt === 'string' ? r.prompt : JSON.stringify(r.prompt);
  return [prompt, r.responseA, r.responseB].some((t) => hiddenCharacters(t).length > 0);
}

/** The JSON object of one label as its own row (aggregate all; null for ties and both-bad labels). */
function preferenceOf(r: ExportRow): Record<string, unknown> | null {
  if (r.choice !== 'a' && r.choice !== 'b') return null;
  const [chosen, rejected] = r.choice === 'a' ? [r.responseA, r.responseB] : [r.responseB, r.responseA];
  return {
    prompt: r.prompt,
    chosen: completion(r.prompt, chosen),
    rejected: completion(r.prompt, rejected),
    round: r.round,
    annotator: r.annotator,
    simulated: r.simulated,
    reason: r.reason,
    pair_id: r.pairId,
  };
}

function completion(prompt: unknown, text: string): unknown {
  return Array.isArray(prompt) ? [{ role: 'assistant', content: text }] : text;
}

/** The rows of an export (no file written). */
export function preferenceRows(rows: readonly ExportRow[] | ExportRow[], aggregate: Aggregate = 'majority'): { rows: Record<string, unknown>[]; counts: ExportCounts } {
  const counts: ExportCounts = { written: 0, ties: 0, bothBad: 0, identical: 0, disagreements: 0, converted: 0, hidden: 0, simulated: 0 };
  const out: Record<string, unknown>[] = [];
  // one format per file: when any prompt is a conversation, every text prompt becomes one user message
  if (rows.some((r) => Array.isArray(r.prompt)) && rows.some((r) => !Array.isArray(r.prompt))) {
    const seen = new Set<number>();
    rows = rows.map((r) => {
      if (Array.isArray(r.prompt)) return r;
      if (!seen.has(r.pairId)) {
        seen.add(r.pairId);
        counts.converted++;
      }
      return { ...r, prompt: [{ role: 'user', content: r.prompt }] };
    });
  }
  if (aggregate === 'all') {
    for (const r of rows) {
      if (r.responseA === r.responseB) {
        counts.identical++;
        continue;
      }
      const p = preferenceOf(r);
      if (p === null) {
        if (r.choice === 'tie') counts.ties++;
        else counts.bothBad++;
        continue;
      }
      out.push(p);
      if (hasHidden(r)) counts.hidden++;
      if (r.simulated) counts.simulated++;
    }
    counts.written = out.length;
    return { rows: out, counts };
  }
  const byPair = new Map<number, ExportRow[]>();
  for (const r of rows) (byPair.get(r.pairId) ?? byPair.set(r.pairId, []).get(r.pairId)!).push(r);
  for (const labels of byPair.values()) {
    const first = labels[0]!;
    if (first.responseA === first.responseB) {
      counts.identical++;
      continue;
    }
    const a = labels.filter((l) => l.choice === 'a'),
      b = labels.filter((l) => l.choice === 'b');
    if (!a.length && !b.length) {
      if (labels.some((l) => l.choice === 'tie')) counts.ties++;
      else counts.bothBad++;
      continue;
    }
    if (a.length === b.length || (aggregate === 'drop-disagreements' && a.length && b.length)) {
      counts.disagreements++;
      continue;
    }
    const aWins = a.length > b.length;
    const winners = aWins ? a : b;
    const [chosen, rejected] = aWins ? [first.responseA, first.responseB] : [first.responseB, first.responseA];
    out.push({
      prompt: first.prompt,
      chosen: completion(first.prompt, chosen),
      rejected: completion(first.prompt, rejected),
      soft_label: winners.length / (a.length + b.length),
      round: first.round,
      pair_id: first.pairId,
      votes: a.length + b.length,
      annotators: labels.map((l) => l.annotator),
      simulated: labels.some((l) => l.simulated),
      reasons: winners.map((l) => l.reason).filter((x): x is string => x !== null),
    });
    if (hasHidden(first)) counts.hidden++;
    if (labels.some((l) => l.simulated)) counts.simulated++;
  }
  counts.written = out.length;
  return { rows: out, counts };
}

/** Writes the preference JSONL atomically (a temporary file renamed over `out`); all rounds unless `round`. */
export function exportPreferences(store: FeedbackDB, out: string, round?: number, aggregate: Aggregate = 'majority'): ExportCounts {
  const inputs = [
    { what: 'the database', path: store.path },
    { what: "the database's -wal file", path: `${store.path}-wal` },
    { what: "the database's -shm file", path: `${store.path}-shm` },
    ...store.rounds().map((r) => ({ what: `round ${r.id}'s input`, path: r.input })),
  ];
  try {
    assertNotAnInput({ what: '--out', path: out }, inputs);
  } catch (e) {
    throw new StoreError(400, (e as Error).message);
  }
  const { rows, counts } = preferenceRows(store.exportRows(round), aggregate);
  const tmp = `${out}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let buf = '';
    for (const r of rows) {
      buf += JSON.stringify(r) + '\n';
      if (buf.length > 1 << 20) {
        writeSync(fd, buf);
        buf = '';
      }
    }
    if (buf) writeSync(fd, buf);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, out);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return counts;
}
