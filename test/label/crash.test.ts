// kill -9 the labeling server while annotators post labels, restart it on the same database: every label that
// was acknowledged is there (once), and the restarted server goes on taking labels.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FeedbackDB } from '../../src/label/db.js';
import { cleanTmp, request, serveChild, tmp, writeJsonl } from './helpers.js';

after(cleanTmp);

test('kill -9 during posting, restart: every acknowledged label is there', { timeout: 90_000 }, async () => {
  const dir = tmp();
  const db = join(dir, 'fb.sqlite');
  const pairsFile = writeJsonl(
    join(dir, 'pairs.jsonl'),
    Array.from({ length: 400 }, (_, k) => ({ prompt: `prompt ${k}`, response_a: `a${k}`, response_b: `b${k}` })),
  );
  const N = 16,
    PER = 25,
    KILL_AFTER = 60;
  const setup = FeedbackDB.open(db);
  const tokens = Array.from({ length: N }, (_, i) => setup.addAnnotator(`ann${i}`).token);
  setup.close();

  const first = await serveChild(['--pairs', pairsFile, '--db', db]);
  const acked: { annotator: number; labelId: number; side: string }[] = [];
  let failed = 0;
  await Promise.all(
    tokens.map(async (token, i) => {
      // bounded: PER labels at most, and the first failed request (the server is gone) ends the loop
      for (let k = 0; k < PER; k++) {
        try {
          const next = await request(new URL('/api/next', first.url).href, { token });
          if (!next.body?.item) break;
          const side = k % 3 === 0 ? 'left' : 'right';
          const r = await request(new URL('/api/label', first.url).href, { method: 'POST', token, json: { assignmentId: next.body.item.assignmentId, choice: side } });
          assert.equal(r.status, 200, r.text);
          acked.push({ annotator: i, labelId: r.body.labelId, side });
          if (acked.length === KILL_AFTER) first.proc.kill('SIGKILL');
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          failed++;
          break;
        }
      }
    }),
  );
  assert.equal(await first.exited, 'SIGKILL');
  assert.ok(acked.length >= KILL_AFTER, `${acked.length} labels acknowledged before the kill`);
  assert.ok(failed > 0, 'requests were cut off by the kill');

  // restart with the same command line
  const second = await serveChild(['--pairs', pairsFile, '--db', db]);
  try {
    const store = FeedbackDB.open(db);
    try {
      assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
      const get = store.db.prepare('SELECT annotator_id, choice, left_is_a, undone_at FROM labels WHERE id = ?');
      for (const a of acked) {
        const row = get.get(a.labelId) as { annotator_id: number; choice: string; left_is_a: number; undone_at: number | null } | undefined;
        assert.ok(row, `acknowledged label ${a.labelId} is missing`);
        assert.equal(row.annotator_id, a.annotator + 1);
        assert.equal(row.undone_at, null);
        const expected = a.side === 'left' ? (row.left_is_a ? 'a' : 'b') : row.left_is_a ? 'b' : 'a';
        assert.equal(row.choice, expected);
      }
      const dup = store.db.prepare('SELECT count(*) AS n FROM (SELECT assignment_id FROM labels WHERE undone_at IS NULL GROUP BY assignment_id HAVING count(*) > 1)').get() as { n: number };
      assert.equal(dup.n, 0);
    } finally {
      store.close();
    }
    // each annotator sees their acknowledged labels through the restarted server
    for (let i = 0; i < N; i++) {
      const mine = await request(new URL('/api/labels', second.url).href, { token: tokens[i]! });
      const ids = new Set((mine.body.labels as { labelId: number }[]).map((l) => l.labelId));
      for (const a of acked.filter((x) => x.annotator === i)) assert.ok(ids.has(a.labelId), `ann${i} label ${a.labelId}`);
    }
    // and the restarted server takes new labels
    const next = await request(new URL('/api/next', second.url).href, { token: tokens[0]! });
    const r = await request(new URL('/api/label', second.url).href, { method: 'POST', token: tokens[0]!, json: { assignmentId: next.body.item.assignmentId, choice: 'tie' } });
    assert.equal(r.status, 200);
  } finally {
    second.proc.kill('SIGTERM');
    assert.equal(await second.exited, 0, 'SIGTERM stops the server cleanly');
  }
});
