// The README's main job, end to end (quick mode): every stage runs offline and the aligned policies beat SFT
// on the judge while the reward model learns the judge's preference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quickstart } from '../../src/cli/quickstart.js';
import { runEval } from '../../src/cli/eval.js';
import { cli } from '../helpers/cli.js';
import { Writable } from 'node:stream';
import { winRate } from '../../src/eval/policy-eval.js';

test('quickstart: pretrain → SFT → AI-judged pairs → reward model → DPO and PPO improve the judge score', async () => {
  const out = mkdtempSync(join(tmpdir(), 'alignkit-quickstart-'));
  const lines: string[] = [];
  try {
    const r = await quickstart({ out, quick: true, seed: 0, log: (s) => lines.push(s) });
    for (const stage of ['base', 'pretrain', 'sft', 'reward', 'dpo', 'ppo']) assert.ok(existsSync(join(out, stage, 'config.json')), `${stage} saved`);
    assert.ok(existsSync(join(out, 'sft', 'metrics.jsonl')));
    const sft = r.sft!,
      dpo = r.dpo!,
      ppo = r.ppo!;
    assert.ok(Math.abs(sft.kl!) < 1e-4, `SFT vs itself: KL ${sft.kl}`); // sampler's cached log-probs vs a full forward
    assert.ok(dpo.judge! > sft.judge! + 0.5, `DPO judge ${dpo.judge} vs SFT ${sft.judge}`);
    assert.ok(ppo.judge! > sft.judge! + 0.5, `PPO judge ${ppo.judge} vs SFT ${sft.judge}`);
    assert.ok(ppo.reward! > sft.reward!, `PPO reward ${ppo.reward} vs SFT ${sft.reward}`);
    for (const m of [dpo, ppo]) assert.ok(Number.isFinite(m.kl!) && m.kl! > 0 && m.kl! < 50, `KL ${m.kl}`);
    const acc = /reward model held-out accuracy ([\d.]+)/.exec(lines.join('\n'));
    assert.ok(acc && Number(acc[1]) >= 0.65, `reward model accuracy line: ${acc?.[0]}`);
    // `alignkit eval` on the same run: DPO against SFT by the judge, with the reward model and KL to SFT
    const table: string[] = [];
    const ev = await runEval(
      {
        model: [join(out, 'sft'), join(out, 'dpo')],
        prompts: join(out, 'data', 'prompts.jsonl'),
        reward_model: join(out, 'reward'),
        ref: join(out, 'sft'),
        judge: 'sentiment',
        samples: 1,
        max_new_tokens: 16,
        temperature: 1,
        seed: 0,
        out: join(out, 'cmp.json'),
      },
      (l) => table.push(l),
    );
    assert.match(table[0]!, /model\s+judge\s+reward\s+KL\(ref\)\s+win rate/);
    const e = ev[join(out, 'dpo')]!;
    assert.ok(winRate(ev[join(out, 'sft')]!, e)! > 0.55, `DPO win rate vs SFT ${winRate(ev[join(out, 'sft')]!, e)}`);
    assert.ok(existsSync(join(out, 'cmp.json')));
    let err = '';
    const sink = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) });
    assert.equal(await cli(['eval', '--prompts', 'x.jsonl'], sink), 2);
    assert.match(err, /give one or more --model/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
