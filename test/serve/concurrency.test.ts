// 100 concurrent requests — chat and text, greedy and seeded sampling (with top-k and top-p), different lengths
// and n, on two base models and a LoRA adapter — each answered exactly as the same request served alone, while
// the engine really batches them. Then SIGTERM mid-stream: `alignkit serve` (a child process) ends the stream
// cleanly with [DONE] and exits 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../src/engine/native.js';
import { makeModels, makeSlowModel, serve } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'alignkit-serve-load-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('100 concurrent requests each equal the same request served alone (greedy and seeded sampling)', async () => {
  const m = makeModels(root);
  const { server, client } = await serve(m, {
    models: [
      { name: 'gpt2', dir: m.gpt2 },
      { name: 'llama', dir: m.llama },
      { name: 'lora', dir: m.adapter },
    ],
    maxBatch: 32,
  });
  try {
    const words = ['hello', 'world', 'the quick brown fox', 'jumps over', 'the lazy dog', 'is it good', 'yes or no'];
    const requests = Array.from({ length: 100 }, (_, i) => {
      const model = ['gpt2', 'llama', 'lora'][i % 3]!;
      const sampling = i % 4 !== 0;
      const common = {
        model,
        max_tokens: 4 + (i % 13),
        temperature: sampling ? 0.6 + (i % 5) * 0.2 : 0,
        seed: 1000 + i,
        top_p: i % 7 === 1 ? 0.8 : undefined,
        top_k: i % 6 === 2 ? 20 : undefined,
        n: i % 10 === 3 ? 2 : 1,
      };
      const text = `${words[i % words.length]} ${words[(i * 3) % words.length]}`.repeat(1 + (i % 2));
      return i % 2 === 0
        ? () =>
            client.chat.completions
              .create({ ...common, messages: [{ role: 'user', content: text }], logprobs: i % 8 === 0, top_logprobs: i % 8 === 0 ? 2 : undefined })
              .then((r) => r.choices.map((c) => [c.message.content, c.finish_reason, c.logprobs]))
        : () => client.completions.create({ ...common, prompt: text, logprobs: i % 9 === 1 ? 3 : undefined }).then((r) => r.choices.map((c) => [c.text, c.finish_reason, c.logprobs]));
    });
    const alone: unknown[] = [];
    for (const r of requests) alone.push(await r());
    let peak = 0;
    const poll = setInterval(() => (peak = Math.max(peak, server.engine.load.active)), 2);
    const together = await Promise.all(requests.map((r) => r()));
    clearInterval(poll);
    together.forEach((t, i) => assert.deepEqual(t, alone[i], `request ${i}`));
    assert.ok(peak >= 16, `the engine batched them (at most ${peak} sequences at once)`);
  } finally {
    await server.close();
  }
});

test('SIGTERM mid-stream: the stream ends with [DONE], new connections are refused, the process exits 0', async () => {
  const slow = makeSlowModel(join(root, 'slow'));
  const child = spawn(process.execPath, [join(packageRoot(), 'dist', 'src', 'cli', 'main.js'), 'serve', '--model', `slow=${slow}`, '--port', '0', '--shutdown-grace', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '',
    err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)\/v1/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`serve exited: ${err}`)));
    });
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'slow', prompt: 'hello', max_tokens: 900, temperature: 0, stream: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let first = '';
    while (!first.includes('data: ')) first += new TextDecoder().decode((await reader.read()).value);
    child.kill('SIGTERM');
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const events = (first + rest)
      .split('\n\n')
      .filter((b) => b.startsWith('data: '))
      .map((b) => b.slice(6));
    assert.equal(events[events.length - 1], '[DONE]');
    const last = JSON.parse(events[events.length - 2]!) as { choices: { finish_reason: string | null }[] };
    assert.equal(last.choices[0]!.finish_reason, 'length', 'the cut request ends as if it reached its length');
    assert.ok(events.length < 900, `the request was cut short (${events.length} events)`);
    assert.equal(await exited, 0, err);
    assert.match(err, /SIGTERM: finishing running requests/);
    await assert.rejects(fetch(`${url}/health`));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
