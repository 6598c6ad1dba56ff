// Export of the labels as a preference dataset in TRL's format: one JSON line per decisive label with "prompt",
// "chosen", "rejected" (text, or chat messages when the prompt is conversational), plus "round", "annotator",
// "reason" and "pair_id" as extra columns. Ties and both-bad labels are left out and counted.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { ExportRow, FeedbackDB } from './db.js';

export interface ExportCounts {
  /** preference rows written */
  written: number;
  ties: number;
  bothBad: number;
}

/** The JSON object of one preference row (null for ties and both-bad labels). */
export function preferenceOf(r: ExportRow): Record<string, unknown> | null {
  if (r.choice !== 'a' && r.choice !== 'b') return null;
  const [chosen, rejected] = r.choice === 'a' ? [r.responseA, r.responseB] : [r.responseB, r.responseA];
  const conversational = Array.isArray(r.prompt);
  const completion = (text: string) => (conversational ? [{ role: 'assistant', content: text }] : text);
  return { prompt: r.prompt, chosen: completion(chosen), rejected: completion(rejected), round: r.round, annotator: r.annotator, reason: r.reason, pair_id: r.pairId };
}

/** Writes the preference JSONL atomically (a temporary file renamed over `out`); all rounds unless `round`. */
export function exportPreferences(store: FeedbackDB, out: string, round?: number): ExportCounts {
  const rows = store.exportRows(round);
  const counts: ExportCounts = { written: 0, ties: 0, bothBad: 0 };
  const tmp = `${out}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let buf = '';
    for (const r of rows) {
      const p = preferenceOf(r);
      if (p === null) {
        if (r.choice === 'tie') counts.ties++;
        else counts.bothBad++;
        continue;
      }
      buf += JSON.stringify(p) + '\n';
      counts.written++;
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
