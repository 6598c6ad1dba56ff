// `alignkit bench label` as a smoke run (a few annotators for a second per phase; the measured figures are in
// docs/labeling.md, not asserted here): both phases run, every row is there, and the export check finds every
// acknowledged label exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { cli } from '../helpers/cli.js';

test('bench label: a small run of both phases reports its rows and every acknowledged label exported exactly once', { timeout: 60_000 }, async () => {
  let out = '',
    err = '';
  const code = await cli(
    ['bench', 'label', '--annotators', '6', '--pairs', '300', '--seconds', '1.5', '--warmup', '0.2', '--rate', '60', '--json'],
    new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }),
    new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) }),
  );
  assert.equal(code, 0, err + out);
  const rows = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { name: string; alignkit: number; reference: number | null; unit: string; note?: string });
  assert.equal(rows.length, 12);
  for (const phase of ['paced', 'saturated']) {
    const mine = rows.filter((r) => r.name.startsWith(`label ${phase} 6 annotators, 300 pairs`));
    assert.deepEqual(
      mine.map((r) => r.name.split(': ')[1]),
      ['labels/s', 'GET /api/next p50', 'GET /api/next p99', 'POST /api/label p50', 'POST /api/label p99', 'acknowledged labels exported exactly once'],
    );
    const once = mine[5]!;
    assert.ok(once.alignkit > 0 && once.alignkit === once.reference, `${phase}: ${JSON.stringify(once)}`);
    assert.equal(once.note, 'every acknowledged label, nothing else');
    assert.ok(mine[0]!.alignkit > 0 && mine[2]!.alignkit >= mine[1]!.alignkit);
  }
});
