// `alignkit chat` driven through its standard input (a child process): answers stream as the model's greedy
// continuation of the rendered conversation, the conversation is kept between turns, /system and /reset start
// over, Ctrl-C (SIGINT) stops a long answer and the chat goes on, end of input exits 0.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../src/engine/native.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { generate } from '../../src/models/generate.js';
import { Tokenizer, type ChatMessage } from '../../src/tokenizer/index.js';
import { makeModels, makeSlowModel } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'alignkit-chat-'));
after(() => rmSync(root, { recursive: true, force: true }));
const MAIN = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

/** The greedy answer the model gives to a conversation (what the chat must print). */
function expected(dir: string, messages: ChatMessage[], maxNew: number): string {
  const tok = Tokenizer.fromPretrained(dir);
  const ids = tok.applyChatTemplate(messages, { addGenerationPrompt: true, tokenize: true });
  const p = loadPretrained(dir);
  const g = generate(p.model, [ids], { maxNewTokens: Math.min(maxNew, p.model.config.maxPositions - ids.length), doSample: false, eosTokenId: tok.eosTokenId ?? null });
  p.model.dispose();
  return tok.decode(g.tokens[0]!, { skipSpecialTokens: true });
}

function startChat(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  waitFor: (re: RegExp, from?: () => string) => Promise<void>;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [MAIN, 'chat', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '',
    err = '';
  const waiters: (() => void)[] = [];
  const poke = () => waiters.splice(0).forEach((w) => w());
  child.stdout.on('data', (d) => ((out += d), poke()));
  child.stderr.on('data', (d) => ((err += d), poke()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => (poke(), r(c))));
  const waitFor = async (re: RegExp, from: () => string = () => out): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!re.test(from())) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} in output:\n${out}\n--- stderr:\n${err}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { child, out: () => out, err: () => err, waitFor, exited };
}

test('alignkit chat: streamed answers, a kept conversation, /system and /reset, end of input exits', async () => {
  const m = makeModels(root);
  const c = startChat(['--model', m.gpt2, '--temperature', '0', '--max-new-tokens', '6']);
  try {
    await c.waitFor(/alignkit chat: /, c.err);
    const a1 = expected(m.gpt2, [{ role: 'user', content: 'hello' }], 6);
    c.child.stdin.write('hello\n');
    await c.waitFor(/\n/);
    assert.equal(c.out(), a1 + '\n');
    // the second answer sees the first exchange
    const a2 = expected(
      m.gpt2,
      [
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: a1 },
        { role: 'user', content: 'the dog' },
      ],
      6,
    );
    c.child.stdin.write('the dog\n');
    await c.waitFor(/\n[^]*\n/);
    assert.equal(c.out(), `${a1}\n${a2}\n`);
    // a system message starts over with it
    c.child.stdin.write('/system be brief\n');
    await c.waitFor(/system message set/, c.err);
    const a3 = expected(
      m.gpt2,
      [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello' },
      ],
      6,
    );
    c.child.stdin.write('hello\n');
    await c.waitFor(/\n[^]*\n[^]*\n/);
    c.child.stdin.write('/reset\n');
    await c.waitFor(/conversation cleared\)\n[^]*conversation cleared/, c.err);
    c.child.stdin.write('hello\n');
    await c.waitFor(/\n[^]*\n[^]*\n[^]*\n/);
    assert.equal(c.out(), `${a1}\n${a2}\n${a3}\n${a1}\n`, '/reset keeps the system message, clears the turns');
    c.child.stdin.end();
    assert.equal(await c.exited, 0, c.err());
  } finally {
    if (c.child.exitCode === null) c.child.kill('SIGKILL');
  }
});

test('alignkit chat: Ctrl-C stops the current answer, not the program; a model without a chat template is refused', async () => {
  const slow = makeSlowModel(join(root, 'slow'));
  const c = startChat(['--model', slow, '--temperature', '0', '--max-new-tokens', '900']);
  try {
    await c.waitFor(/alignkit chat: /, c.err);
    c.child.stdin.write('hello\n');
    await c.waitFor(/\S/);
    c.child.kill('SIGINT');
    await c.waitFor(/\[stopped\]\n/);
    assert.ok(c.out().length < 900 * 4, 'the answer was cut short');
    c.child.stdin.write('/exit\n');
    assert.equal(await c.exited, 0, c.err());
  } finally {
    if (c.child.exitCode === null) c.child.kill('SIGKILL');
  }
  const m = makeModels(join(root, 'plain-models'));
  const p = startChat(['--model', m.plain]);
  assert.equal(await p.exited, 2);
  assert.match(p.err(), /has no chat template/);
});
