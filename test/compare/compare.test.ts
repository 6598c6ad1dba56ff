// `alignkit compare` at tiny sizes (a run in seconds whose figures mean nothing): the table's structure, its
// figures recomputed from the held-out samples it saved, the report in chromium, and a restart that redoes nothing.
// (RLHF and DPO are left out here: a tiny model's answers are all off-topic, so the gold judge ties every pair and
// there is no comparison to train on; test/rlhf covers the loop with a judge of its own.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { TINY_SIZES } from '../../src/compare/options.js';
import { goldWinRate, judgeResponses } from '../../src/eval/gold-judge.js';
import { CHROMIUM_ARGS, CLI, requireChromium } from '../label/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-compare-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, 'out');
const ARGS = ['compare', '--size', 'tiny', '--seeds', '2', '--methods', 'sft,cai,cai-dpo', '--output-dir', out, '--json'];
const KEYS = ['method', 'human_demonstrations', 'human_comparisons', 'human_harm_labels', 'harmless_rate', 'helpful_rate', 'win_rate_vs_base', 'kl_to_base', 'wall_s', 'peak_rss_mb'];

function run(): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI(), ...ARGS], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let first: ReturnType<typeof run>;

test('compare --json: one line for the base and one per method, every figure with its _std over two seeds', { timeout: 240_000 }, () => {
  first = run();
  assert.equal(first.code, 0, first.stderr);
  const rows = first.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    rows.map((r) => r.method),
    ['base', 'sft', 'cai', 'cai-dpo'],
  );
  for (const r of rows) {
    for (const k of KEYS) assert.ok(k in r, `${r.method}: ${k}`);
    for (const k of KEYS.slice(1)) assert.ok(`${k}_std` in r, `${r.method}: ${k}_std`);
    assert.equal(r.seeds, 2);
    assert.ok((r.wall_s as number) >= 0 && (r.peak_rss_mb as number) > 20, JSON.stringify(r));
  }
  const by = Object.fromEntries(rows.map((r) => [r.method, r]));
  assert.equal(by.sft!.human_demonstrations, TINY_SIZES.demonstrations);
  assert.ok((by.sft!.human_harm_labels as number) > 0 && (by.sft!.human_harm_labels as number) <= TINY_SIZES.demonstrations);
  // the constitution alone: no human data at all, AI labels instead
  for (const m of ['cai', 'cai-dpo']) {
    assert.equal(by[m]!.human_demonstrations, 0);
    assert.equal(by[m]!.human_comparisons, 0);
    assert.equal(by[m]!.human_harm_labels, 0);
    assert.ok((by[m]!.ai_labels as number) > 0, m);
  }
  assert.equal(by.base!.kl_to_base, 0);
  assert.equal(by.base!.win_rate_vs_base, 0.5);
});

test('the figures are computed from the held-out samples the run saved', () => {
  const res = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8')) as {
    rows: { method: string; seed: number; harmless_rate: number | null; helpful_rate: number | null; win_rate_vs_base: number | null }[];
  };
  assert.equal(res.rows.length, 8);
  for (const seed of [0, 1]) {
    const read = (m: string) =>
      readFileSync(join(out, `seed-${seed}`, 'eval', `samples-${m}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { prompt: string; response: string; kind: string });
    const base = read('base');
    for (const row of res.rows.filter((r) => r.seed === seed)) {
      const s = read(row.method);
      // every held-out prompt answered, none of them a training prompt
      const evalPrompts = readFileSync(join(out, `seed-${seed}`, 'data', 'eval_prompts.jsonl'), 'utf8')
        .trim()
        .split('\n').length;
      assert.equal(s.length, evalPrompts * TINY_SIZES.samples);
      const rep = judgeResponses(s);
      assert.equal(row.harmless_rate, rep.harmless_rate, `${row.method} seed ${seed}`);
      assert.equal(row.helpful_rate, rep.helpful_rate);
      assert.equal(row.win_rate_vs_base, goldWinRate(base, s));
    }
  }
});

test('report.html opens offline in chromium: the table, the lock-picking answers and three charts, no console errors', { timeout: 60_000 }, async () => {
  const browser = await chromium.launch({ executablePath: requireChromium(), args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('pageerror', (e) => errors.push(e.message));
    // offline: every request but the file itself is refused
    await page.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
    await page.goto(`file://${join(out, 'report.html')}`);
    assert.match((await page.textContent('#table')) ?? '', /SFT[\s\S]*CAI \/ RLAIF \(PPO\)/);
    assert.match((await page.textContent('#showcase')) ?? '', /How do I pick a lock\?/);
    assert.equal(await page.locator('#charts figure svg').count(), 3);
    const marks = await page.locator('#charts svg path, #charts svg circle').count();
    assert.ok(marks > 10, `marks drawn: ${marks}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('a second run redoes no stage and prints the same table', { timeout: 120_000 }, () => {
  const again = run();
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);
  assert.equal((again.stderr.match(/done before/g) ?? []).length, 2 * 5, again.stderr);
});
