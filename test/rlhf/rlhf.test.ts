// `alignkit rlhf`: rounds of fresh labels from `alignkit label simulate` through the loop's labeling server, a
// reward model on every round's labels, PPO from the newest policy; killed with SIGKILL while round 2 waits for
// its labels, it resumes at round 2 (round 1 is not redone, round 2's labelling round is reused, no label is lost).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBase } from '../../src/compare/base.js';
import { TINY_SIZES } from '../../src/compare/options.js';
import { worldOf, writeWorldFiles } from '../../src/compare/world-files.js';
import { FeedbackDB } from '../../src/label/db.js';
import { CLI } from '../label/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-rlhf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `alignkit ARGS`; `waitFor` resolves when stderr matches. */
function start(args: string[]): { proc: ChildProcess; stderr: () => string; waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>; exited: Promise<number | string> } {
  const proc = spawn(process.execPath, [CLI(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const waiters: { re: RegExp; res: (m: RegExpExecArray) => void }[] = [];
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    for (const w of waiters.splice(0)) {
      const m = w.re.exec(err);
      if (m) w.res(m);
      else waiters.push(w);
    }
  });
  proc.stdout!.resume();
  const exited = new Promise<number | string>((r) => proc.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return {
    proc,
    stderr: () => err,
    exited,
    waitFor: (re, ms = 60_000) =>
      new Promise((res, rej) => {
        const m = re.exec(err);
        if (m) return res(m);
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${re} in:\n${err}`)), ms);
        waiters.push({ re, res: (x) => (clearTimeout(t), res(x)) });
        void exited.then((c) => rej(new Error(`exited (${c}) before ${re}:\n${err}`)));
      }),
  };
}

/** `alignkit label simulate` against the loop's server until `labels` labels are given. */
async function simulate(db: string, url: string, labels: number, judge: string): Promise<void> {
  const s = start(['label', 'simulate', '--db', db, '--server', url, '--annotators', '2', '--labels', String(labels), '--judge', judge, '--error-rate', '0']);
  assert.equal(await s.exited, 0, s.stderr());
}

test('rlhf: two rounds of simulated labels; killed while round 2 waits, it resumes at round 2 and finishes', { timeout: 240_000 }, async () => {
  const s = TINY_SIZES;
  const world = worldOf(0, s);
  const files = writeWorldFiles(world, join(dir, 'data'), s);
  const { base } = await trainBase(world, files, join(dir, 'base'), s, 0, true);
  // a judge that prefers the shorter response (ties when equal)
  const judge = join(dir, 'judge.mjs');
  writeFileSync(judge, "export default (_p, l, r) => (l.length < r.length ? 'left' : l.length > r.length ? 'right' : 'tie');\n");
  const out = join(dir, 'run');
  const cfg = join(dir, 'rlhf.yaml');
  writeFileSync(
    cfg,
    [
      `model_name_or_path: ${base}`,
      `prompts: ${files.rlPrompts}`,
      `output_dir: ${out}`,
      'rounds: 2',
      'labels_per_round: 4',
      'prompts_per_round: 6',
      'port: 0',
      'max_new_tokens: 16',
      'seed: 3',
      'reward: { max_steps: 2, per_device_train_batch_size: 2, save_steps: 1 }',
      'ppo: { total_episodes: 4, per_device_train_batch_size: 2, response_length: 8, save_steps: 1 }',
      '',
    ].join('\n'),
  );
  const db = join(out, 'feedback.sqlite');

  const first = start(['rlhf', '--config', cfg]);
  const url = (await first.waitFor(/labeling server: (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;
  await first.waitFor(/round-1: labelling round 1 .*waiting for 4 labels/);
  await simulate(db, url, 4, judge);
  await first.waitFor(/round-2: labelling round 2 .*waiting for 4 labels/, 120_000);
  assert.ok(existsSync(join(out, 'round-1', 'stage.json')) && existsSync(join(out, 'round-1', 'ppo', 'config.json')));
  // one label of round 2, then kill -9
  await simulate(db, url, 1, judge);
  first.proc.kill('SIGKILL');
  assert.equal(await first.exited, 'SIGKILL');

  const second = start(['rlhf', '--config', cfg]);
  const url2 = (await second.waitFor(/labeling server: (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;
  await second.waitFor(/round-1: done before; skipped/);
  await second.waitFor(/round-2: labelling round 2 .*waiting for 4 labels/);
  await simulate(db, url2, 3, judge);
  assert.equal(await second.exited, 0, second.stderr());
  assert.doesNotMatch(second.stderr(), /round-1: labelling round/, 'round 1 was not redone');

  const state = JSON.parse(readFileSync(join(out, 'rlhf.json'), 'utf8')) as { rounds: { round: number; labelRound: number; policy: string }[] };
  assert.deepEqual(
    state.rounds.map((r) => [r.round, r.labelRound]),
    [
      [1, 1],
      [2, 2],
    ],
  );
  assert.equal(state.rounds[1]!.policy, join(out, 'round-1', 'ppo'), 'round 2 samples from round 1’s PPO policy');
  const store = FeedbackDB.open(db);
  try {
    assert.equal(store.rounds().length, 2, 'no third labelling round');
    assert.equal(store.labelCount(1), 4);
    assert.equal(store.labelCount(2), 4, 'the label given before the kill is kept');
  } finally {
    store.close();
  }
  // round 2's reward model saw both rounds' labels; its PPO continued from round 1's policy
  const rec = JSON.parse(readFileSync(join(out, 'round-2', 'stage.json'), 'utf8')) as { labels: number; policy: string };
  assert.equal(rec.labels, 4);
  assert.ok(existsSync(join(out, 'round-2', 'ppo', 'config.json')) && existsSync(join(out, 'round-2', 'reward', 'config.json')));
});
