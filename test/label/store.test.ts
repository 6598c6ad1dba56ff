// The feedback store, export and statistics without the server: tokens stored as hashes only, assignment (one
// or two annotators per pair, leases), left/right mapping, undo, the TRL export and the agreement/bias numbers.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDataset } from '../../src/data/dataset.js';
import { FeedbackDB, type LabelRow } from '../../src/label/db.js';
import { exportPreferences } from '../../src/label/export.js';
import type { PairRecord } from '../../src/label/inputs.js';
import { agreement, computeStats, formatStats, positionBias } from '../../src/label/stats.js';
import { cleanTmp, tmp } from './helpers.js';

after(cleanTmp);

const LEASE = 60_000;

function pairs(n: number, conversational = false): PairRecord[] {
  return Array.from({ length: n }, (_, k) => ({
    line: k + 1,
    id: `p${k}`,
    prompt: conversational ? [{ role: 'user', content: `prompt ${k}` }] : `prompt ${k}`,
    responseA: `A${k}`,
    responseB: `B${k}`,
    sourceA: null,
    sourceB: null,
  }));
}

function readJsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a database is created with its folders, in WAL mode with full sync; tokens are stored as hashes only', () => {
  const path = join(tmp(), 'a', 'b', 'fb.sqlite');
  const s = FeedbackDB.open(path);
  try {
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.db.pragma('synchronous', { simple: true }), 2); // FULL
    const { token } = s.addAnnotator('alice');
    assert.match(token, /^ak_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(s.annotatorByToken(token), { id: 1, name: 'alice', simulated: false });
    assert.equal(s.annotatorByToken(token + 'x'), null);
    assert.equal(s.annotatorByToken(''), null);
    const rows = s.db.prepare('SELECT * FROM annotators').all() as Record<string, unknown>[];
    assert.equal(JSON.stringify(rows).includes(token), false, 'the token itself is nowhere in the table');
    assert.equal(rows[0]!.token_hash, createHash('sha256').update(token).digest('hex'));
    assert.throws(() => s.addAnnotator('alice'), /annotator "alice" already exists/);
    assert.throws(() => s.addAnnotator(' bob'), /annotator name must be/);
    assert.throws(() => s.addAnnotator('x'.repeat(65)), /annotator name must be/);
    // nor anywhere in the database files
    for (const f of [path, path + '-wal']) if (existsSync(f)) assert.equal(readFileSync(f).includes(token), false, f);
  } finally {
    s.close();
  }
});

test('assignment: each pair once per annotator, two annotators where agreement is wanted, leases expire', () => {
  const s = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  try {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => s.addAnnotator(n).id);
    const r = s.openRound({ source: 'pairs', input: 'x.jsonl', agreement: 0.5, pairs: pairs(4) });
    const want = (s.db.prepare('SELECT want FROM pairs ORDER BY id').all() as { want: number }[]).map((x) => x.want);
    assert.deepEqual(want, [1, 2, 1, 2], 'exactly half the pairs want two labels');
    const t = 1_000_000;
    const ia = s.nextItem(a!, r.id, t, LEASE)!;
    assert.equal(s.nextItem(a!, r.id, t, LEASE)!.assignmentId, ia.assignmentId, 'an open assignment comes back until labeled');
    assert.equal(ia.prompt, 'prompt 0');
    const ib = s.nextItem(b!, r.id, t, LEASE)!;
    assert.equal(ib.prompt, 'prompt 1', 'pair 0 wants one label and is held by a');
    const ic = s.nextItem(c!, r.id, t, LEASE)!;
    assert.equal(ic.prompt, 'prompt 1', 'pair 1 wants two labels: b and c both get it');
    assert.deepEqual(new Set([ia.left, ia.right]), new Set(['A0', 'B0']));
    // a label maps the side shown to the pair's own a/b
    s.label(a!, ia.assignmentId, 'left', 'clearer', t);
    s.label(b!, ib.assignmentId, 'right', null, t);
    s.label(c!, ic.assignmentId, 'tie', null, t);
    assert.throws(() => s.label(a!, ia.assignmentId, 'right', null, t), /already labeled/);
    assert.throws(
      () => s.label(b!, ia.assignmentId, 'right', null, t),
      (e: Error & { status?: number }) => e.status === 404,
    );
    // a's next: pair 1 is full (b and c), so pair 2
    const ia2 = s.nextItem(a!, r.id, t, LEASE)!;
    assert.equal(ia2.prompt, 'prompt 2');
    // b takes pair 3; c would get pair 3 too (it wants two); a stale open assignment of a on pair 2 expires
    assert.equal(s.nextItem(b!, r.id, t, LEASE)!.prompt, 'prompt 3');
    s.label(b!, s.nextItem(b!, r.id, t, LEASE)!.assignmentId, 'left', null, t);
    assert.equal(s.nextItem(b!, r.id, t, LEASE)?.prompt, undefined, 'nothing for b while a holds pair 2');
    assert.equal(s.nextItem(b!, r.id, t + LEASE + 1, LEASE)!.prompt, 'prompt 2', "after the lease, a's open pair 2 goes to b");
    assert.deepEqual(s.progress(a!, r.id, t, LEASE), { round: r.id, labeled: 1, ready: 2, sampling: 0 });
    const rows = exportPreferencesOf(s);
    const row0 = rows.find((x) => x.prompt === 'prompt 0')!;
    assert.equal(row0.chosen, ia.left, 'the export holds what was shown on the chosen side');
    assert.equal(row0.rejected, ia.right);
    assert.equal(row0.reason, 'clearer');
    assert.equal(row0.annotator, 'a');
    const row1 = rows.find((x) => x.prompt === 'prompt 1')!;
    assert.equal(row1.chosen, ib.right);
  } finally {
    s.close();
  }
});

function exportPreferencesOf(s: FeedbackDB, round?: number): Record<string, unknown>[] {
  const out = join(tmp(), 'prefs.jsonl');
  exportPreferences(s, out, round, 'all');
  return readJsonl(out);
}

test('undo withdraws the latest label of the round, reopens its pair, and the pair can be labeled again', () => {
  const s = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  try {
    const a = s.addAnnotator('a').id,
      b = s.addAnnotator('b').id;
    const r = s.openRound({ source: 'pairs', input: 'x', pairs: pairs(3) });
    const t = 5_000;
    const i1 = s.nextItem(a, r.id, t, LEASE)!;
    s.label(a, i1.assignmentId, 'left', 'r1', t);
    const i2 = s.nextItem(a, r.id, t, LEASE)!;
    s.label(a, i2.assignmentId, 'both_bad', 'r2', t);
    const i3 = s.nextItem(a, r.id, t, LEASE)!; // open, on screen
    assert.equal(s.undo(b, r.id, t), null, "b has nothing to undo, and cannot reach a's labels");
    const u = s.undo(a, r.id, t + 1)!;
    assert.deepEqual(u.item, i2);
    assert.equal(u.side, 'both_bad');
    assert.equal(u.reason, 'r2');
    assert.equal(s.nextItem(a, r.id, t + 1, LEASE)!.assignmentId, i2.assignmentId, 'the undone pair is next, before the one that was on screen');
    s.label(a, i2.assignmentId, 'right', null, t + 2);
    assert.equal(s.nextItem(a, r.id, t + 2, LEASE)!.assignmentId, i3.assignmentId);
    const rows = exportPreferencesOf(s);
    assert.equal(rows.length, 2);
    assert.deepEqual(
      rows.map((x) => x.chosen),
      [i1.left, i2.right],
    );
    // the withdrawn label stays in the database, marked
    const all = s.db.prepare('SELECT choice, undone_at FROM labels ORDER BY id').all() as { choice: string; undone_at: number | null }[];
    assert.equal(all.length, 3);
    assert.equal(all[1]!.choice, 'both_bad');
    assert.equal(all[1]!.undone_at, t + 1);
    assert.deepEqual(
      (s.db.prepare('SELECT labeled FROM pairs ORDER BY id').all() as { labeled: number }[]).map((x) => x.labeled),
      [1, 1, 0],
    );
  } finally {
    s.close();
  }
});

test('export: TRL preference rows (text or conversational), ties and both-bad left out and counted, one round', async () => {
  const s = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  try {
    const a = s.addAnnotator('ann').id;
    const r1 = s.openRound({ source: 'pairs', input: 'x', pairs: pairs(4) });
    const sides = ['left', 'right', 'tie', 'both_bad'] as const;
    const shown: { left: string; right: string }[] = [];
    for (const side of sides) {
      const it = s.nextItem(a, r1.id, 1, LEASE)!;
      shown.push(it);
      s.label(a, it.assignmentId, side, side === 'left' ? 'because' : null, 1);
    }
    const r2 = s.openRound({ source: 'pairs', input: 'y', pairs: pairs(1, true) });
    const it = s.nextItem(a, r2.id, 1, LEASE)!;
    s.label(a, it.assignmentId, 'right', null, 1);
    const out = join(tmp(), 'prefs.jsonl');
    assert.deepEqual(exportPreferences(s, out, undefined, 'all'), { written: 3, ties: 1, bothBad: 1, identical: 0, disagreements: 0, converted: 4, hidden: 0, simulated: 0 });
    const rows = readJsonl(out);
    assert.deepEqual(rows[0], {
      prompt: [{ role: 'user', content: 'prompt 0' }],
      chosen: [{ role: 'assistant', content: shown[0]!.left }],
      rejected: [{ role: 'assistant', content: shown[0]!.right }],
      round: 1,
      annotator: 'ann',
      simulated: false,
      reason: 'because',
      pair_id: 1,
    });
    assert.deepEqual(rows[1], {
      prompt: [{ role: 'user', content: 'prompt 1' }],
      chosen: [{ role: 'assistant', content: shown[1]!.right }],
      rejected: [{ role: 'assistant', content: shown[1]!.left }],
      round: 1,
      annotator: 'ann',
      simulated: false,
      reason: null,
      pair_id: 2,
    });
    assert.deepEqual(rows[2], {
      prompt: [{ role: 'user', content: 'prompt 0' }],
      chosen: [{ role: 'assistant', content: it.right }],
      rejected: [{ role: 'assistant', content: it.left }],
      round: 2,
      annotator: 'ann',
      simulated: false,
      reason: null,
      pair_id: 5,
    });
    // the files read as TRL preference data in alignkit's own data layer (extra columns ignored)
    const firstRound = join(tmp(), 'r1.jsonl');
    exportPreferences(s, firstRound, 1, 'all');
    const c1 = await checkDataset(firstRound);
    assert.deepEqual(c1.format, { type: 'preference', conversational: false, implicitPrompt: false });
    assert.equal(c1.report.kept, 2);
    assert.deepEqual(exportPreferences(s, out, 2, 'all'), { written: 1, ties: 0, bothBad: 0, identical: 0, disagreements: 0, converted: 0, hidden: 0, simulated: 0 });
    assert.equal(readJsonl(out).length, 1);
    const c2 = await checkDataset(out);
    assert.deepEqual(c2.format, { type: 'preference', conversational: true, implicitPrompt: false });
    assert.equal(c2.report.kept, 1);
    const st = computeStats(s);
    const a1 = (shown[0]!.left === 'A0' ? 1 : 0) + (shown[1]!.right === 'A1' ? 1 : 0);
    const a2 = it.right === 'A0' ? 1 : 0;
    assert.deepEqual(st.annotators, [
      { round: 1, annotator: 'ann', labels: 4, a: a1, b: 2 - a1, tie: 1, both_bad: 1 },
      { round: 2, annotator: 'ann', labels: 1, a: a2, b: 1 - a2, tie: 0, both_bad: 0 },
    ]);
    assert.deepEqual(
      st.rounds.map((x) => [x.round, x.pairs, x.labels]),
      [
        [1, 4, 4],
        [2, 1, 1],
      ],
    );
    assert.match(formatStats(st), /labels per annotator and round/);
  } finally {
    s.close();
  }
});

test('agreement and Fleiss kappa on pairs labeled twice; position bias with its Wilson interval', () => {
  const row = (pairId: number, choice: LabelRow['choice'], leftIsA = true, annotator = 'x'): LabelRow => ({ labelId: 0, pairId, round: 1, annotator, choice, leftIsA });
  const rows = [row(1, 'a'), row(1, 'a'), row(2, 'b'), row(2, 'b'), row(3, 'a'), row(3, 'b'), row(4, 'tie'), row(4, 'tie'), row(5, 'a')];
  const g = agreement(rows);
  assert.equal(g.items, 4);
  assert.equal(g.comparisons, 4);
  assert.equal(g.observed, 0.75);
  // pooled shares over the 8 labels of those items: a 3/8, b 3/8, tie 2/8 → expected 22/64
  assert.ok(Math.abs(g.kappa! - (0.75 - 22 / 64) / (1 - 22 / 64)) < 1e-12);
  assert.deepEqual(agreement([row(1, 'a')]), { items: 0, comparisons: 0, observed: null, kappa: null });
  // left wins: choice a shown left, or choice b shown right
  const bias = positionBias([...Array.from({ length: 6 }, () => row(9, 'a', true)), row(9, 'b', false), row(9, 'b', false), row(9, 'a', false), row(9, 'b', true), row(9, 'tie')]);
  assert.equal(bias.decisive, 10);
  assert.equal(bias.leftWins, 8);
  assert.equal(bias.rate, 0.8);
  assert.ok(Math.abs(bias.ci95![0] - 0.4902) < 1e-3 && Math.abs(bias.ci95![1] - 0.9433) < 1e-3, `${bias.ci95}`);
});

test('progress from counters and indexes equals a full recount after every step of a random session (leases, late labels, undo, agreement)', () => {
  const s = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  try {
    const ann = ['a', 'b', 'c', 'd'].map((n) => s.addAnnotator(n).id);
    const r = s.openRound({ source: 'pairs', input: 'x', agreement: 0.5, pairs: pairs(30) });
    const lease = 1000;
    // the definitions, counted by scanning every pair, assignment and label
    const recount = (who: number, now: number) => {
      const cutoff = now - lease;
      const one = (sql: string, ...args: unknown[]) => (s.db.prepare(sql).get(...args) as { n: number }).n;
      const labeled = one('SELECT count(*) AS n FROM labels WHERE annotator_id = ? AND round_id = ? AND undone_at IS NULL', who, r.id);
      const remaining = one('SELECT coalesce(sum(max(0, want - labeled)), 0) AS n FROM pairs WHERE round_id = ?', r.id);
      const live = one(
        `SELECT coalesce(sum(min(x.c, max(0, p.want - p.labeled))), 0) AS n FROM (SELECT a.pair_id, count(*) AS c FROM assignments a JOIN pairs q ON q.id = a.pair_id
           WHERE q.round_id = ? AND a.opened_at > ? AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = a.id AND l.undone_at IS NULL) GROUP BY a.pair_id) x JOIN pairs p ON p.id = x.pair_id`,
        r.id,
        cutoff,
      );
      const had = one(
        `SELECT count(*) AS n FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE a.annotator_id = ? AND p.round_id = ? AND p.labeled < p.want
           AND NOT (a.opened_at > ? AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = a.id AND l.undone_at IS NULL))`,
        who,
        r.id,
        cutoff,
      );
      const open =
        one(
          `SELECT count(*) AS n FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE a.annotator_id = ? AND p.round_id = ?
           AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = a.id AND l.undone_at IS NULL)`,
          who,
          r.id,
        ) > 0
          ? 1
          : 0;
      assert.equal(s.remaining(r.id), remaining, 'the remaining counter');
      return { round: r.id, labeled, ready: open + Math.max(0, remaining - live - had), sampling: 0 };
    };
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const held = new Map<number, number>(); // annotator → an assignment they may label late
    let now = 10_000,
      steps = 0,
      late = 0,
      undone = 0;
    while (s.remaining(r.id) > 0 && steps < 2000) {
      steps++;
      now += rnd(3) === 0 ? lease / 2 : 7;
      const who = ann[rnd(ann.length)]!;
      const act = rnd(10);
      if (act < 6) {
        const it = s.nextItem(who, r.id, now, lease);
        if (it && rnd(3) > 0) s.labelThenNext(who, it.assignmentId, rnd(2) ? 'left' : 'right', null, now, r.id, lease);
        else if (it) held.set(who, it.assignmentId);
      } else if (act < 8 && held.has(who)) {
        try {
          s.label(who, held.get(who)!, 'tie', null, now);
          late++;
        } catch (e) {
          assert.equal((e as { status?: number }).status, 409);
        }
        held.delete(who);
      } else if (act === 8) {
        if (s.undo(who, r.id, now)) undone++;
      }
      for (const a of ann) assert.deepEqual(s.progress(a, r.id, now, lease), recount(a, now), `step ${steps}, annotator ${a}`);
    }
    assert.ok(late > 0 && undone > 0 && steps > 100, `the walk covered late labels (${late}) and undos (${undone}) in ${steps} steps`);
  } finally {
    s.close();
  }
});
