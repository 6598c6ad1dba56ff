// The README's library examples run as written (blocks marked <!-- doctest -->), from the repository root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/engine/native.js';

const ROOT = packageRoot();
const blocks = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/<!-- doctest -->\n```js\n([\s\S]*?)```/g)].map((m) => m[1]!);

test('the README has runnable examples', () => assert.ok(blocks.length >= 3, `found ${blocks.length} doctest blocks`));

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, () => {
    const file = join(ROOT, `.readme-doctest-${i}-${process.pid}.mjs`);
    writeFileSync(file, code);
    try {
      // an example checks its own results (node:assert) or prints them; any failure is a non-zero exit
      const out = execFileSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.ok(!/\bfalse\b/.test(out), `example ${i + 1} printed: ${out}`);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
