// Export aggregation with several annotators per pair, through the real store: a pair with three votes (a late
// label after its lease expired), agreeing and disagreeing pairs, ties, both-bad, a pair whose two responses are the
// same text and a simulated annotator's vote. majority, drop-disagreements and all give exactly the rows, soft
// labels and counts worked out by hand; the majority file reads back as preference data with a soft_label column.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDataset } from '../../src/data/dataset.js';
import { type Choice, type ExportRow, FeedbackDB } from '../../src/label/db.js';
import { exportPreferences, preferenceRows } from '../../src/label/export.js';
import { cleanTmp, tmp } from './helpers.js';

after(cleanTmp);

const LEASE = 60_000;

function readJsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('majority, drop-disagreements and all over pairs with one to three annotators: exact rows, soft labels and counts', async () => {
  const s = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  try {
    const x = s.addAnnotator('x').id,
      y = s.addAnnotator('y').id,
      z = s.addAnnotator('z').id;
    const w = s.addAnnotator('w', { simulated: true }).id;
    const texts = [1, 2, 3, 4, 5, 6].map((k) => ({ prompt: `q${k}`, responseA: `A${k}`, responseB: `B${k}` }));
    texts.push({ prompt: 'q7', responseA: 'same', responseB: 'same' });
    // every pair wants two labels
    const r = s.openRound({ source: 'pairs', input: 'x', agreement: 1, pairs: texts.map((p, k) => ({ line: k + 1, id: null, sourceA: null, sourceB: null, ...p })) });
    /** The annotator's next pair must be `prompt`; they vote `choice` in the pair's own terms. */
    const vote = (who: number, prompt: string, choice: Choice, t: number, reason: string | null = null) => {
      const it = s.nextItem(who, r.id, t, LEASE)!;
      assert.equal(it.prompt, prompt);
      const side = choice === 'a' ? (it.left.startsWith('A') ? 'left' : 'right') : choice === 'b' ? (it.left.startsWith('B') ? 'left' : 'right') : choice;
      s.label(who, it.assignmentId, side, reason, t);
    };
    const t0 = 1_000_000,
      t1 = t0 + LEASE + 1;
    // q1: x opens it and walks away; y votes a; after x's lease z gets it and votes b; then x votes a after all
    const held = s.nextItem(x, r.id, t0, LEASE)!;
    assert.equal(held.prompt, 'q1');
    vote(y, 'q1', 'a', t0, 'y: shorter');
    vote(z, 'q1', 'b', t1, 'z: kinder');
    s.label(x, held.assignmentId, held.left === 'A1' ? 'left' : 'right', 'x: right answer', t1);
    vote(x, 'q2', 'b', t1); // q2: b, b (the second vote simulated)
    vote(w, 'q2', 'b', t1);
    vote(x, 'q3', 'a', t1); // q3: a, b — a tie of votes
    vote(y, 'q3', 'b', t1);
    vote(x, 'q4', 'a', t1); // q4: a and a tie: one decisive vote
    vote(y, 'q4', 'tie', t1);
    vote(x, 'q5', 'tie', t1); // q5: tie and both bad
    vote(y, 'q5', 'both_bad', t1);
    vote(x, 'q6', 'both_bad', t1); // q6: both bad twice
    vote(y, 'q6', 'both_bad', t1);
    vote(x, 'q7', 'a', t1); // q7: identical responses
    vote(y, 'q7', 'b', t1);
    assert.equal(s.labelCount(), 15);

    const dir = tmp();
    const majority = join(dir, 'majority.jsonl');
    assert.deepEqual(exportPreferences(s, majority), { written: 3, ties: 1, bothBad: 1, identical: 1, disagreements: 1, converted: 0, hidden: 0, simulated: 1 });
    const rows = readJsonl(majority);
    assert.deepEqual(rows, [
      { prompt: 'q1', chosen: 'A1', rejected: 'B1', soft_label: 2 / 3, round: 1, pair_id: 1, votes: 3, annotators: ['y', 'z', 'x'], simulated: false, reasons: ['y: shorter', 'x: right answer'] },
      { prompt: 'q2', chosen: 'B2', rejected: 'A2', soft_label: 1, round: 1, pair_id: 2, votes: 2, annotators: ['x', 'w'], simulated: true, reasons: [] },
      { prompt: 'q4', chosen: 'A4', rejected: 'B4', soft_label: 1, round: 1, pair_id: 4, votes: 1, annotators: ['x', 'y'], simulated: false, reasons: [] },
    ]);
    assert.equal(readFileSync(majority, 'utf8').includes('"soft_label":0.6666666666666666'), true, 'the fraction is written in full');
    // the file is preference data, and the reward trainer's loader takes its soft_label column
    const c = await checkDataset(majority);
    assert.deepEqual(c.format, { type: 'preference', conversational: false, implicitPrompt: false });
    assert.equal(c.report.kept, 3);

    const strict = join(dir, 'strict.jsonl');
    assert.deepEqual(exportPreferences(s, strict, undefined, 'drop-disagreements'), { written: 2, ties: 1, bothBad: 1, identical: 1, disagreements: 2, converted: 0, hidden: 0, simulated: 1 });
    assert.deepEqual(
      readJsonl(strict).map((x) => [x.prompt, x.chosen, x.soft_label, x.votes]),
      [
        ['q2', 'B2', 1, 2],
        ['q4', 'A4', 1, 1],
      ],
    );

    const all = join(dir, 'all.jsonl');
    // one row per decisive label in label order; the two q7 labels count as identical, each tie and both-bad label once
    assert.deepEqual(exportPreferences(s, all, undefined, 'all'), { written: 8, ties: 2, bothBad: 3, identical: 2, disagreements: 0, converted: 0, hidden: 0, simulated: 1 });
    const each = readJsonl(all);
    assert.deepEqual(
      each.map((x) => [x.prompt, x.annotator, x.chosen, x.rejected, x.simulated]),
      [
        ['q1', 'y', 'A1', 'B1', false],
        ['q1', 'z', 'B1', 'A1', false],
        ['q1', 'x', 'A1', 'B1', false],
        ['q2', 'x', 'B2', 'A2', false],
        ['q2', 'w', 'B2', 'A2', true],
        ['q3', 'x', 'A3', 'B3', false],
        ['q3', 'y', 'B3', 'A3', false],
        ['q4', 'x', 'A4', 'B4', false],
      ],
    );
    assert.equal(
      each.some((x) => 'soft_label' in x),
      false,
      'rows of single votes carry no soft label',
    );
  } finally {
    s.close();
  }
});

test('soft_label is the winning share of the decisive votes: 3 of 5, 3 of 4, 4 of 4, and a 2–2 split is dropped', () => {
  let id = 0;
  const votes = (pairId: number, choices: Choice[]): ExportRow[] =>
    choices.map((choice, k) => ({
      labelId: ++id,
      pairId,
      round: 1,
      annotator: `n${k}`,
      simulated: false,
      choice,
      reason: null,
      prompt: `p${pairId}`,
      responseA: `a${pairId}`,
      responseB: `b${pairId}`,
    }));
  const rows = [...votes(1, ['a', 'b', 'a', 'b', 'a']), ...votes(2, ['b', 'b', 'tie', 'a', 'b', 'both_bad']), ...votes(3, ['a', 'a', 'a', 'a']), ...votes(4, ['a', 'b', 'b', 'a'])];
  const m = preferenceRows(rows, 'majority');
  assert.deepEqual(
    m.rows.map((r) => [r.pair_id, r.chosen, r.soft_label, r.votes]),
    [
      [1, 'a1', 0.6, 5],
      [2, 'b2', 0.75, 4],
      [3, 'a3', 1, 4],
    ],
  );
  assert.equal(m.counts.disagreements, 1);
  const d = preferenceRows(rows, 'drop-disagreements');
  assert.deepEqual(
    d.rows.map((r) => [r.pair_id, r.soft_label]),
    [[3, 1]],
  );
  assert.equal(d.counts.disagreements, 3);
  const a = preferenceRows(rows, 'all');
  assert.equal(a.rows.length, 17);
  assert.deepEqual([a.counts.ties, a.counts.bothBad], [1, 1]);
});
