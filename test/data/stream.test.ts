// Streaming: a generated 50 MB JSONL file is validated line by line with bounded memory (the heap never grows
// by more than a fraction of the file), and bad lines deep in it are reported with their exact line numbers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DatasetReader } from '../../src/data/index.js';
import { tempDir } from './helpers.js';

test('a 50 MB JSONL file streams with bounded memory; bad lines are reported by number', async (t) => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'big.jsonl');
    const fd = openSync(path, 'w');
    const words = ['alpha', 'beta', 'gamma', 'delta', 'épsilon', '日本', '🤖', 'zeta\n', 'eta "quoted"'];
    let line = 0,
      bytes = 0;
    const bad = new Map<number, string>();
    while (bytes < 50 * 1024 * 1024) {
      let chunk = '';
      for (let k = 0; k < 1000; k++) {
        line++;
        let rec: string;
        if (line % 9973 === 0) {
          rec = '{"prompt": "truncated line';
          bad.set(line, 'invalid_json');
        } else if (line % 7919 === 0) {
          rec = JSON.stringify({ prompt: `p${line}`, chosen: 'same', rejected: 'same' });
          bad.set(line, 'identical_pair');
        } else {
          const w = (i: number) => words[(line * 7 + i) % words.length];
          const body = Array.from({ length: 60 }, (_, i) => w(i)).join(' ');
          rec = JSON.stringify({ prompt: `Question ${line}: ${body}`, chosen: ` ${body} yes`, rejected: ` ${body} no`, id: line });
        }
        chunk += rec + '\n';
      }
      bytes += writeSync(fd, chunk);
    }
    closeSync(fd);
    assert.ok(statSync(path).size >= 50 * 1024 * 1024);

    // a full collection before each sample measures what the reader keeps alive, not garbage not yet collected
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0,
      kept = 0;
    const reader = new DatasetReader(path, { skipInvalid: true, maxReportedSkips: 1000 });
    for await (const rec of reader.records()) {
      kept++;
      if (kept % 5000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      }
      if (rec.source.line === 12345) assert.ok(rec.type === 'preference' && rec.prompt === `Question 12345: ${Array.from({ length: 60 }, (_, i) => words[(12345 * 7 + i) % words.length]).join(' ')}`);
    }
    const r = reader.report;
    assert.equal(r.read, line);
    assert.equal(r.kept, kept);
    assert.equal(r.kept + r.skipped, line);
    assert.deepEqual(
      r.firstSkipped.map((s) => [s.line, s.code]),
      [...bad.entries()].sort((x, y) => x[0] - y[0]),
    );
    // the file is 50 MB; holding it (or its parsed records) would cost well over that
    assert.ok(peak < 16 * 1024 * 1024, `the reader kept ${(peak / 1048576).toFixed(1)} MB alive while streaming`);
    t.diagnostic(`streamed ${line} records (${(bytes / 1048576).toFixed(0)} MB); live heap growth at most ${(peak / 1048576).toFixed(2)} MB`);
  } finally {
    cleanup();
  }
});
