// The OpenAI-compatible backend against real HTTP servers on 127.0.0.1 (node:http, real sockets): completions and
// chat completions, option log-probabilities from top_logprobs, and the failures a user meets — no log-probs,
// 500 and 429 (retried, bounded), a server that hangs (timeout), options missing from the top tokens — each a
// clear error; labelling through a failing server writes only whole rows and resumes to exactly one row per pair.
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { labelPairs } from '../../src/cai/ai-labels.js';
import { OpenAITextModel } from '../../src/feedback/openai-model.js';
import { tempDir } from '../train/helpers.js';
import { TOY } from '../cai/helpers.js';

type Mode = 'ok' | 'no-logprobs' | 'fail-500' | 'flaky' | 'rate-limited' | 'hang' | 'wrong-tokens' | 'die-after';

interface Fake {
  url: string;
  requests: { path: string; body: Record<string, unknown> }[];
  mode: Mode;
  close(): Promise<void>;
  /** with die-after: requests answered before the server starts failing */
  budget: number;
}

/** A small OpenAI-compatible server whose answers depend on `mode`: it prefers the option whose text says "good". */
async function fakeServer(mode: Mode): Promise<Fake> {
  const fake: Fake = { url: '', requests: [], mode, budget: Infinity, close: async () => {} };
  let calls = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      fake.requests.push({ path: req.url ?? '', body });
      calls++;
      const send = (status: number, obj: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(obj));
      };
      if (req.url === '/v1/models') return send(200, { object: 'list', data: [{ id: 'fake-model', object: 'model' }] });
      if (fake.mode === 'hang') return; // never answers
      if (fake.mode === 'fail-500' || (fake.mode === 'flaky' && calls % 2 === 1) || (fake.mode === 'die-after' && calls > fake.budget))
        return send(500, { error: { message: 'boom', type: 'server_error' } });
      if (fake.mode === 'rate-limited' && calls % 2 === 1) return send(429, { error: { message: 'slow down', type: 'rate_limit' } }, { 'retry-after-ms': '10' });
      const prompt = JSON.stringify(body.prompt ?? body.messages);
      const m = /\(A\) (.*?)\\n\(B\) (.*?)(\\n|")/.exec(prompt);
      const aGood = m ? m[1]!.includes('good') : true;
      const top = fake.mode === 'wrong-tokens' ? { ' the': -0.1, ' a': -2 } : { A: aGood ? -0.1 : -2.4, B: aGood ? -2.4 : -0.1, ' the': -5 };
      if (req.url === '/v1/completions') {
        const logprobs = fake.mode === 'no-logprobs' ? null : { tokens: ['A'], token_logprobs: [-0.1], top_logprobs: [top], text_offset: [0] };
        return send(200, {
          id: 'c',
          object: 'text_completion',
          created: 0,
          model: 'fake-model',
          choices: [{ index: 0, text: body.max_tokens === 1 ? 'A' : ' a reply', finish_reason: 'length', logprobs }],
          usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
        });
      }
      if (req.url === '/v1/chat/completions') {
        const content =
          fake.mode === 'no-logprobs' ? null : [{ token: 'A', logprob: -0.1, bytes: null, top_logprobs: Object.entries(top).map(([token, logprob]) => ({ token, logprob, bytes: null })) }];
        return send(200, {
          id: 'c',
          object: 'chat.completion',
          created: 0,
          model: 'fake-model',
          choices: [{ index: 0, message: { role: 'assistant', content: 'a reply' }, finish_reason: 'stop', logprobs: content ? { content } : null }],
          usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
        });
      }
      send(404, { error: { message: 'no such route' } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  fake.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}

const q = (a: string, b: string) => `Human: Which is kinder?\nOptions:\n(A) ${a}\n(B) ${b}\n\nAssistant: The answer is: (`;

test('completions and chat completions: generation and option log-probabilities through a real socket', async () => {
  const s = await fakeServer('ok');
  try {
    const m = new OpenAITextModel({ baseURL: s.url, maxRetries: 0 });
    const g = await m.generate([{ prompt: 'Human: hi\n\nAssistant:', maxTokens: 8, temperature: 0.5, seed: 3, stop: ['\n\nHuman:'] }]);
    assert.equal(g[0]!.text, ' a reply');
    assert.equal(g[0]!.tokens, 3);
    const sent = s.requests.find((r) => r.path === '/v1/completions')!.body;
    assert.deepEqual([sent.model, sent.max_tokens, sent.temperature, sent.seed, sent.stop], ['fake-model', 8, 0.5, 3, ['\n\nHuman:']], 'the model name comes from /v1/models');
    const [lp] = await m.choiceLogprobs([{ prompt: q('a good one', 'a bad one'), options: ['A', 'B'] }]);
    assert.deepEqual(lp, [-0.1, -2.4]);
    const chat = new OpenAITextModel({ baseURL: s.url, model: 'fake-model', chat: true, maxRetries: 0 });
    const [lc] = await chat.choiceLogprobs([{ prompt: [{ role: 'user', content: 'Which is kinder?\nOptions:\n(A) a bad one\n(B) a good one' }], options: ['A', 'B'] }]);
    assert.deepEqual(lc, [-2.4, -0.1]);
    const last = s.requests.at(-1)!;
    assert.equal(last.path, '/v1/chat/completions');
    assert.equal(last.body.logprobs, true);
    assert.equal(last.body.top_logprobs, 20);
  } finally {
    await s.close();
  }
});

test('a server without log-probabilities, or whose top tokens lack the options, is a clear error', async () => {
  for (const [mode, re] of [
    ['no-logprobs', /the server returned no log-probabilities on \/completions \(it must support "logprobs"\)/],
    ['wrong-tokens', /option "A" is not among the top 2 tokens the server returned \(" the", " a"…\)/],
  ] as const) {
    const s = await fakeServer(mode);
    try {
      const m = new OpenAITextModel({ baseURL: s.url, model: 'fake-model', maxRetries: 0 });
      await assert.rejects(m.choiceLogprobs([{ prompt: q('good', 'bad'), options: ['A', 'B'] }]), re);
    } finally {
      await s.close();
    }
  }
});

test('500 and 429 are retried with backoff, a bounded number of times; a hung server times out', async () => {
  const flaky = await fakeServer('flaky');
  try {
    const m = new OpenAITextModel({ baseURL: flaky.url, model: 'fake-model', maxRetries: 2 });
    const [lp] = await m.choiceLogprobs([{ prompt: q('good', 'bad'), options: ['A', 'B'] }]);
    assert.deepEqual(lp, [-0.1, -2.4]);
    assert.equal(flaky.requests.length, 2, 'one failure, one retry');
  } finally {
    await flaky.close();
  }
  const limited = await fakeServer('rate-limited');
  try {
    const m = new OpenAITextModel({ baseURL: limited.url, model: 'fake-model', maxRetries: 1 });
    await m.choiceLogprobs([{ prompt: q('good', 'bad'), options: ['A', 'B'] }]);
    assert.equal(limited.requests.length, 2);
  } finally {
    await limited.close();
  }
  const down = await fakeServer('fail-500');
  try {
    const m = new OpenAITextModel({ baseURL: down.url, model: 'fake-model', maxRetries: 2 });
    await assert.rejects(m.choiceLogprobs([{ prompt: q('good', 'bad'), options: ['A', 'B'] }]), /openai:http:\/\/127\.0\.0\.1:\d+\/v1#fake-model: POST \/completions failed with HTTP 500/);
    assert.equal(down.requests.length, 3, 'the first try and two retries, no more');
  } finally {
    await down.close();
  }
  const hung = await fakeServer('hang');
  try {
    const m = new OpenAITextModel({ baseURL: hung.url, model: 'fake-model', maxRetries: 1, timeoutMs: 150 });
    const t0 = Date.now();
    await assert.rejects(m.choiceLogprobs([{ prompt: q('good', 'bad'), options: ['A', 'B'] }]), /POST \/completions timed out after 150 ms/);
    assert.ok(Date.now() - t0 < 5000, 'bounded by the timeout and the retries');
    assert.equal(hung.requests.length, 2);
  } finally {
    await hung.close();
  }
});

test('labelling through a server that dies part-way writes only whole rows; the rerun labels each pair exactly once', async () => {
  const { dir, cleanup } = tempDir('alignkit-http-');
  const s = await fakeServer('die-after');
  try {
    const pairs = Array.from({ length: 10 }, (_, i) => ({
      id: `p${i}`,
      prompt: `describe ${i}`,
      response_a: i % 2 ? 'a good reply' : 'a bad reply',
      response_b: i % 2 ? 'a bad reply' : 'a good reply',
    }));
    const out = join(dir, 'ai_prefs.jsonl');
    s.budget = 9; // /v1/models, then 8 questions: four pairs (two orders each) with batch size 2
    const m = new OpenAITextModel({ baseURL: s.url, maxRetries: 0, concurrency: 1 });
    await assert.rejects(labelPairs({ model: m, constitution: TOY, pairs, out, batchSize: 2, quiet: true }), /failed with HTTP 500/);
    const partial = readFileSync(out, 'utf8');
    assert.ok(partial.endsWith('\n'));
    const ids = partial
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    assert.deepEqual(ids, ['p0', 'p1', 'p2', 'p3'], 'the finished batches, whole');
    s.mode = 'ok';
    await labelPairs({ model: m, constitution: TOY, pairs, out, batchSize: 2, quiet: true });
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; chosen: string; soft_label: number });
    assert.deepEqual(rows.map((r) => r.id).sort(), pairs.map((p) => p.id).sort());
    assert.ok(rows.every((r) => r.chosen.includes('good') && r.soft_label > 0.8));
  } finally {
    await s.close();
    cleanup();
  }
});
