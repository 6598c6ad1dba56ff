// The options tables in docs/ are the field tables themselves (regenerated with `npm run docs`).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { docTables, updateDocBlocks } from '../src/cli/docs.js';
import { packageRoot } from '../src/engine/native.js';

const DOCS = join(packageRoot(), 'docs');

test('every options block in docs/ is current (run `npm run docs` after changing a field table)', () => {
  let blocks = 0;
  for (const f of readdirSync(DOCS).filter((n) => n.endsWith('.md'))) {
    const text = readFileSync(join(DOCS, f), 'utf8');
    blocks += (text.match(/<!-- options:/g) ?? []).length;
    assert.equal(updateDocBlocks(text, f), text, `${f} has a stale options table: run \`npm run build && npm run docs\``);
  }
  // every trainer config, the model and data options, and the recipes are documented
  for (const name of ['TrainingArguments', 'ModelConfig', 'data', 'SFTConfig', 'RewardConfig', 'DPOConfig', 'PPOConfig', 'RLOOConfig', 'GRPOConfig', 'cai run', 'rlhf'])
    assert.ok(
      readdirSync(DOCS).some((f) => readFileSync(join(DOCS, f), 'utf8').includes(`<!-- options:${name} -->`)),
      `docs/ has a table of ${name}`,
    );
  assert.ok(blocks >= Object.keys(docTables()).length - 3);
});
