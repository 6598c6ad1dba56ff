// `alignkit label simulate` against the real CLI server (a child process): simulated annotators label through the
// HTTP API with a judge that knows the gold preference (the response that starts with "good"). From the labels
// stored in the database alone — the choice and which response was shown on the left — the test measures the
// error rate (labels against the gold) and the position bias (labels for the left response) and checks them
// against the settings: exactly for error rates 0 and 1, and within 4 binomial standard deviations for a noisy run.
// Simulated annotators are marked as such in the database, by `label annotators` and in the export.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { labelMain } from '../helpers/cli.js';
import { FeedbackDB } from '../../src/label/db.js';
import { cleanTmp, serveChild, tmp, writeJsonl } from './helpers.js';

after(cleanTmp);

function capture(): { stream: Writable; text: () => string } {
  let t = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((t += String(c)), cb()) }), text: () => t };
}

/** A stored label as the test measures it: against the gold, and whether the left response was chosen. */
interface Measured {
  id: number;
  wrong: boolean;
  left: boolean;
  goldLeft: boolean;
}

function measured(db: string, afterId: number): Measured[] {
  const s = FeedbackDB.open(db);
  try {
    const rows = s.db.prepare('SELECT l.id, l.choice, l.left_is_a, p.response_a FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE l.undone_at IS NULL AND l.id > ? ORDER BY l.id').all(afterId) as {
      id: number;
      choice: string;
      left_is_a: number;
      response_a: string;
    }[];
    return rows.map((r) => {
      assert.ok(r.choice === 'a' || r.choice === 'b', `label ${r.id}: the judge is always decisive, got ${r.choice}`);
      const gold = r.response_a.startsWith('good') ? 'a' : 'b';
      const leftIsA = r.left_is_a === 1;
      return { id: r.id, wrong: r.choice !== gold, left: (r.choice === 'a') === leftIsA, goldLeft: (gold === 'a') === leftIsA };
    });
  } finally {
    s.close();
  }
}

/** Asserts a count of successes among n is within 4 binomial standard deviations of n·p. */
function binomial(what: string, successes: number, n: number, p: number): string {
  const sd = Math.sqrt(n * p * (1 - p));
  const line = `${what}: ${successes}/${n} = ${(successes / n).toFixed(4)}, expected ${p.toFixed(4)} ± ${((4 * sd) / n).toFixed(4)} (4 sd)`;
  assert.ok(Math.abs(successes - n * p) <= 4 * sd, line);
  return line;
}

test('label simulate: stored labels show the error rate and position bias it was given; the labels are marked simulated', { timeout: 120_000 }, async () => {
  const dir = tmp();
  const db = join(dir, 'fb.sqlite');
  const N = 3000;
  // the gold response ("good …") is response A in odd pairs and response B in even ones
  const pairs = Array.from({ length: N }, (_, k) => {
    const good = `good answer ${k}`,
      poor = `poor answer ${k}`;
    return { prompt: `question ${k}`, response_a: k % 2 ? good : poor, response_b: k % 2 ? poor : good };
  });
  writeJsonl(join(dir, 'pairs.jsonl'), pairs);
  const judge = join(dir, 'judge.mjs');
  writeFileSync(judge, "export default (prompt, left, right) => left.startsWith('good') ? 'left' : right.startsWith('good') ? 'right' : 'tie';\n");
  const server = await serveChild(['--db', db, '--pairs', join(dir, 'pairs.jsonl')]);
  const notes: string[] = [];
  try {
    const simulate = async (args: string[]) => {
      const out = capture(),
        err = capture();
      const code = await labelMain(['simulate', '--db', db, '--server', server.url, '--judge', judge, ...args], out.stream, err.stream);
      assert.equal(code, 0, err.text());
      assert.match(err.text(), /SIMULATED annotators/);
      return JSON.parse(out.text()) as { simulated: true; labels: number; flipped: number; biased: number; decisive: number; perAnnotator: number[] };
    };

    // error rate 0, no bias: every label is the gold
    let r = await simulate(['--annotators', '3', '--error-rate', '0', '--position-bias', '0', '--labels', '60', '--seed', '1']);
    let m = measured(db, 0);
    assert.equal(r.labels, 60);
    assert.equal(m.length, 60);
    assert.equal(m.filter((x) => x.wrong).length, 0);
    // error rate 1: every label is against the gold
    let last = m.at(-1)!.id;
    r = await simulate(['--annotators', '3', '--error-rate', '1', '--position-bias', '0', '--labels', '60', '--seed', '2']);
    m = measured(db, last);
    assert.deepEqual([r.labels, r.flipped, m.length, m.filter((x) => x.wrong).length], [60, 60, 60, 60]);
    // position bias 1: every label is for the left response, whichever is gold
    last = m.at(-1)!.id;
    r = await simulate(['--annotators', '3', '--error-rate', '0', '--position-bias', '1', '--labels', '60', '--seed', '3']);
    m = measured(db, last);
    assert.deepEqual([r.labels, r.biased, m.filter((x) => x.left).length], [60, 60, 60]);
    assert.ok(
      m.some((x) => !x.goldLeft),
      'the left response was not always the gold one',
    );

    // the rest of the round by 8 annotators with error rate E and position bias B
    const E = 0.15,
      B = 0.3;
    last = m.at(-1)!.id;
    const started = Date.now();
    r = await simulate(['--annotators', '8', '--error-rate', String(E), '--position-bias', String(B), '--seed', '4']);
    const seconds = (Date.now() - started) / 1000;
    m = measured(db, last);
    const n = N - 180;
    assert.equal(r.labels, n, 'the annotators labelled every remaining pair');
    assert.equal(m.length, n);
    assert.equal(r.perAnnotator.length, 8);
    assert.ok(
      r.perAnnotator.every((k) => k > 0),
      `every annotator labelled: ${r.perAnnotator}`,
    );
    // an answer is biased (left) with probability B; otherwise the gold, flipped with probability E. The server shows
    // the gold on the left half the time at random, so: P(wrong) = B/2 + (1 − B)·E and P(left) = B + (1 − B)/2;
    // given the gold on the right, P(left) = B + (1 − B)·E; given the gold on the left, P(left) = B + (1 − B)(1 − E)
    const goldLeft = m.filter((x) => x.goldLeft),
      goldRight = m.filter((x) => !x.goldLeft);
    notes.push(binomial('labels against the gold', m.filter((x) => x.wrong).length, n, B / 2 + (1 - B) * E));
    notes.push(binomial('labels for the left response', m.filter((x) => x.left).length, n, B + (1 - B) / 2));
    notes.push(binomial('left, gold on the right', goldRight.filter((x) => x.left).length, goldRight.length, B + (1 - B) * E));
    notes.push(binomial('left, gold on the left', goldLeft.filter((x) => x.left).length, goldLeft.length, B + (1 - B) * (1 - E)));
    notes.push(binomial('gold shown on the left', goldLeft.length, n, 0.5));
    // the settings recovered from the stored labels alone
    const pR = goldRight.filter((x) => x.left).length / goldRight.length,
      pL = goldLeft.filter((x) => x.left).length / goldLeft.length;
    // (standard deviations at this size, by the delta method: about 0.015 for B̂ and 0.010 for Ê; 0.06 is ≥ 4 sd)
    const bHat = pL + pR - 1,
      eHat = (pR - bHat) / (1 - bHat);
    notes.push(`recovered position bias ${bHat.toFixed(3)} (set ${B}), error rate ${eHat.toFixed(3)} (set ${E}); ${n} labels in ${seconds.toFixed(1)} s`);
    assert.ok(Math.abs(bHat - B) < 0.06 && Math.abs(eHat - E) < 0.06, notes.at(-1));
    // the simulator's own tallies agree
    notes.push(binomial('answers biased (simulator)', r.biased, n, B));
    notes.push(binomial('decisive judgements flipped (simulator)', r.flipped, r.decisive, E));
    assert.equal(r.biased + r.decisive, n);

    // marked simulated: in the database, in `label annotators`, in every exported row and in the export's summary
    const s = FeedbackDB.open(db);
    try {
      assert.deepEqual(
        s.annotators().map((a) => [a.name, a.simulated]),
        Array.from({ length: 8 }, (_, k) => [`sim-${k + 1}`, true]),
      );
    } finally {
      s.close();
    }
    const list = capture();
    assert.equal(await labelMain(['annotators', '--db', db], list.stream), 0);
    assert.equal(list.text(), Array.from({ length: 8 }, (_, k) => `sim-${k + 1} (simulated)\n`).join(''));
    const out = join(dir, 'prefs.jsonl'),
      err = capture();
    assert.equal(await labelMain(['export', '--db', db, '--out', out, '--aggregate', 'all'], err.stream), 0);
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { simulated: boolean; annotator: string });
    assert.equal(rows.length, N);
    assert.ok(rows.every((x) => x.simulated === true && /^sim-\d$/.test(x.annotator)));
    assert.match(err.text(), new RegExp(`${N} written rows are labels of SIMULATED annotators`));
  } finally {
    server.proc.kill('SIGTERM');
    await server.exited;
    for (const line of notes) console.log(line);
  }
});
