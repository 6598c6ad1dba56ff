// The command line: one table, one parser. Every command has --help (exit 0) listing its options with defaults;
// plain `alignkit` prints the commands; every number, range and choice is checked with an error naming the flag
// (or the config file's line); a repeated flag replaces the earlier value; unreadable files are named plainly.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { COMMANDS } from '../../src/cli/commands.js';
import { helpText } from '../../src/cli/dispatch.js';
import { flagName } from '../../src/options/fields.js';
import { splitArgs } from '../../src/options/argv.js';
import { runFields } from '../../src/train/run.js';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../train/helpers.js';

function capture(): { stream: Writable; text: () => string } {
  let s = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((s += String(c)), cb()) }), text: () => s };
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = capture(),
    e = capture();
  const code = await cli(argv, o.stream, e.stream);
  return { code, out: o.text(), err: e.text() };
}

test('plain alignkit lists every command; --help exits 0', async () => {
  const none = await run([]);
  assert.equal(none.code, 1);
  for (const c of COMMANDS) assert.ok(none.out.includes(`alignkit ${c.name}`), `usage lists ${c.name}`);
  assert.equal((await run(['--help'])).code, 0);
  const unknown = await run(['trian']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'trian'/);
  const sub = await run(['label', 'nope']);
  assert.equal(sub.code, 2);
  assert.match(sub.err, /unknown subcommand 'label nope'/);
  assert.equal((await run(['label'])).code, 1, 'a group without a subcommand prints its subcommands');
});

test('every command has --help with each option, its default and its help', async () => {
  assert.ok(COMMANDS.length >= 20, `${COMMANDS.length} commands`);
  for (const c of COMMANDS) {
    const r = await run([...c.name.split(' '), '--help']);
    assert.equal(r.code, 0, `${c.name} --help`);
    assert.equal(r.out, helpText(c));
    assert.ok(r.out.startsWith(`alignkit ${c.name} — ${c.summary}`), c.name);
    for (const [k, fl] of Object.entries(c.options)) {
      if (fl.cli === false) continue;
      const flag = flagName(k, c.style ?? 'kebab');
      assert.ok(r.out.includes(flag), `${c.name} --help shows ${flag}`);
      assert.ok(r.out.includes(fl.help), `${c.name} --help explains ${flag}`);
    }
  }
  const dpo = (await run(['dpo', '--help'])).out;
  assert.match(dpo, /--beta X\s+β: how far the policy may move from the reference .*\(default 0\.1; > 0\)/);
  assert.match(dpo, /DPOConfig \(TRL's names and defaults\):/);
  assert.ok(Object.keys(runFields('dpo')).every((k) => dpo.includes(`--${k}`)));
});

test('numbers, ranges and choices are checked in every command, naming the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['eval', '--model', 'm', '--prompts', 'p.jsonl', '--samples', 'abc'], /alignkit eval: --samples: must be an integer >= 1, got "abc"/],
    [['generate', '--model', 'm', '--prompt', 'x', '--top-p', '7'], /alignkit generate: --top-p: must be a number in \(0, 1\] \(or null\), got "7"/],
    [['generate', '--model', 'm', '--prompt', 'x', '--temperature', '-1'], /--temperature: must be a number >= 0, got "-1"/],
    [['ppo', '--model_name_or_path', 'm', '--learning_rate', '-1e-3'], /alignkit ppo: --learning_rate: must be a number >= 0, got "-1e-3"/],
    [['rloo', '--model_name_or_path', 'm', '--learning_rate', '-1e-3'], /--learning_rate: must be a number >= 0/],
    [['grpo', '--model_name_or_path', 'm', '--learning-rate', '-1e-3'], /--learning_rate: must be a number >= 0/],
    [['dpo', '--model_name_or_path', 'm', '--loss_type', 'kto'], /--loss_type: must be one of sigmoid, ipo, hinge, robust, got "kto"/],
    [['sft', '--model_name_or_path', 'm', '--max_steps', '2.5'], /--max_steps: must be an integer >= -1, got "2.5"/],
    [['label', 'serve', '--port', '70000'], /--port: must be an integer in \[0, 65535\], got "70000"/],
    [['bench', 'gemm', '--quick', 'maybe'], /unexpected|takes no positional|must be true or false/],
    [['sft', '--learnig_rate', '1'], /unknown option --learnig_rate \(did you mean --learning_rate\?\)/],
    [['sft', '--fp16'], /--fp16: TRL's fp16 is not implemented by alignkit/],
    [['sft'], /--model_name_or_path is required/],
    [['label', 'add-annotator'], /'label add-annotator' takes 1 argument \(NAME\)/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: exit ${r.code}, ${r.err}`);
    assert.match(r.err, re, argv.join(' '));
    assert.match(r.err, /see alignkit .* --help/);
  }
});

test('a repeated flag: the last one wins; repeatable options collect', () => {
  const p = splitArgs(['--max_steps', '3', '--max-steps', '5', '--lora_target_modules', 'a,b'], runFields('sft'), { style: 'snake' });
  assert.equal(p.flags.max_steps, '5');
  const g = COMMANDS.find((c) => c.name === 'generate')!;
  const q = splitArgs(['--prompt', 'one', '--prompt', 'two', '--seed', '1', '--seed', '2', '--chat', '--no-chat'], g.options);
  assert.deepEqual(q.flags.prompt, ['one', 'two']);
  assert.equal(q.flags.seed, '2');
  assert.equal(q.flags.chat, false);
});

test('config files: errors name the file, the line and the key; unreadable files are named plainly', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'dpo.yaml');
    writeFileSync(f, 'model_name_or_path: m\ntrain_file: t.jsonl\n\nbeta: -2\n');
    let r = await run(['dpo', '--config', f]);
    assert.equal(r.code, 2);
    assert.match(r.err, new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: beta: must be a number > 0, got -2`));
    r = await run(['dpo', '--config', f, '--beta', '0']);
    assert.match(r.err, /--beta: must be a number > 0, got "0"/, 'a flag overrides the file and is named as a flag');
    writeFileSync(f, 'beta: [0.1\n');
    assert.match((await run(['dpo', '--config', f])).err, /dpo\.yaml:\d+: /);
    r = await run(['dpo', '--config', join(dir, 'missing.yaml')]);
    assert.match(r.err, /cannot read config \S*missing\.yaml: no such file or folder/);
    mkdirSync(join(dir, 'folder.yaml'));
    assert.match((await run(['dpo', '--config', join(dir, 'folder.yaml')])).err, /cannot read config \S*folder\.yaml: is a folder, not a file/);
    writeFileSync(f, 'model_name_or_path: m\nbeta: 0.1\nbetta: 0.2\n');
    assert.match((await run(['dpo', '--config', f])).err, /dpo\.yaml:3: betta: unknown option \(did you mean beta\?\)/);
  } finally {
    cleanup();
  }
});

test('alignkit export gguf writes a GPT-2 folder as GGUF; bad inputs name the path', async () => {
  const { existsSync, statSync } = await import('node:fs');
  const { newPretrained, savePretrained } = await import('../../src/io/pretrained.js');
  const { trainByteLevelBPE } = await import('../../src/tokenizer/index.js');
  const { dir, cleanup } = tempDir();
  try {
    const tok = trainByteLevelBPE(['the cat sat on the mat', 'a dog ran in the park'], { vocabSize: 300, specialTokens: ['<eos>'], config: { eos_token: '<eos>' } });
    const m = join(dir, 'm');
    savePretrained(m, newPretrained({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_embd: 32, n_layer: 1, n_head: 2, n_positions: 16, bos_token_id: tok.eosTokenId, eos_token_id: tok.eosTokenId }));
    tok.save(m);
    const out = join(dir, 'm.gguf');
    const r = await run(['export', 'gguf', '--model', m, '--out', out, '--dtype', 'f16']);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(out) && statSync(out).size > 1000);
    const bad = await run(['export', 'gguf', '--model', join(dir, 'nope'), '--out', out]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /nope/);
    assert.match((await run(['export', 'gguf', '--model', m, '--out', join(m, 'model.safetensors')])).err, /model\.safetensors/);
  } finally {
    cleanup();
  }
});
