// `alignkit serve` over real sockets with the official openai client: chat and text completions, streamed and
// not, log-probs (checked against the model's own forward pass), echo, n, stop, seeds, several models and a LoRA
// adapter; refusals in OpenAI's error shape with the right status (the server stays up); 429 past the queue; a
// client that disconnects mid-stream frees its slot; the API key on a non-loopback bind; the AI-feedback client.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { noGrad } from '../../src/engine/tensor.js';
import { logSoftmax } from '../../src/engine/ops/norm.js';
import { OpenAITextModel } from '../../src/feedback/openai-model.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { generate } from '../../src/models/generate.js';
import type { ServeHandle } from '../../src/serve/server.js';
import { startServer } from '../../src/serve/server.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { type TestModels, makeModels, makeSlowModel, readEvents, serve } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'alignkit-serve-'));
let models: TestModels;
let server: ServeHandle;
let client: OpenAI;
let base: string;

before(async () => {
  models = makeModels(root);
  ({ server, client } = await serve(models, {
    models: [
      { name: 'gpt2', dir: models.gpt2 },
      { name: 'llama', dir: models.llama },
      { name: 'lora', dir: models.adapter },
      { name: 'plain', dir: models.plain },
    ],
    maxBody: 64 * 1024,
  }));
  base = server.url;
});
after(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

/** Log-softmax rows of the model's forward pass over ids (row t: the distribution of token t + 1). */
function forwardLogprobs(dir: string, ids: number[]): Float32Array[] {
  const p = loadPretrained(dir);
  try {
    return noGrad(() => {
      const l = logSoftmax(p.model.forward(Int32Array.from(ids), 1, ids.length)).toArray();
      const V = p.model.config.vocabSize;
      return ids.map((_, t) => l.slice(t * V, (t + 1) * V));
    });
  } finally {
    p.model.dispose();
  }
}

test('GET /v1/models and /health', async () => {
  const list = await client.models.list();
  assert.deepEqual(
    list.data.map((m) => m.id),
    ['gpt2', 'llama', 'lora', 'plain'],
  );
  const h = await fetch(base + '/health');
  assert.equal(h.status, 200);
  assert.equal(((await h.json()) as { status: string }).status, 'ok');
  const one = await fetch(base + '/v1/models/lora');
  assert.equal(((await one.json()) as { parent: string }).parent, models.gpt2);
});

test('chat completions: greedy text, usage and logprobs as the model computes them; streaming gives the same text', async () => {
  const messages = [{ role: 'user' as const, content: 'hello world' }];
  const r = await client.chat.completions.create({ model: 'gpt2', messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3 });
  const tok = Tokenizer.fromPretrained(models.gpt2);
  const ids = tok.applyChatTemplate(messages, { addGenerationPrompt: true, tokenize: true });
  const p = loadPretrained(models.gpt2);
  const g = generate(p.model, [ids], { maxNewTokens: 12, doSample: false, eosTokenId: 0 });
  p.model.dispose();
  const gen = g.tokens[0]!;
  const body = g.finishReason[0] === 'eos' ? gen.slice(0, -1) : gen;
  const c = r.choices[0]!;
  assert.equal(c.message.content, tok.decode(body, { skipSpecialTokens: true }));
  assert.equal(c.finish_reason, g.finishReason[0] === 'eos' ? 'stop' : 'length');
  assert.deepEqual(r.usage, { prompt_tokens: ids.length, completion_tokens: gen.length, total_tokens: ids.length + gen.length });
  // log-probs: the model's own distribution at each generated position
  const lp = forwardLogprobs(models.gpt2, [...ids, ...body]);
  const content = c.logprobs!.content!;
  assert.equal(content.length, body.length);
  content.forEach((e, i) => {
    const row = lp[ids.length - 1 + i]!;
    assert.ok(Math.abs(e.logprob - row[body[i]!]!) < 1e-4, `token ${i}: ${e.logprob} vs ${row[body[i]!]}`);
    assert.equal(e.token, tok.decode([body[i]!]));
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0]!.logprob, e.logprob, 'greedy picks the most likely token');
    assert.ok(e.top_logprobs[0]!.logprob >= e.top_logprobs[1]!.logprob && e.top_logprobs[1]!.logprob >= e.top_logprobs[2]!.logprob);
  });
  // the same request streamed (and seeded sampling: streamed and not streamed agree)
  for (const temperature of [0, 0.9]) {
    const once = await client.chat.completions.create({ model: 'llama', messages, max_tokens: 10, temperature, seed: 11 });
    const s = await client.chat.completions.create({ model: 'llama', messages, max_tokens: 10, temperature, seed: 11, stream: true, stream_options: { include_usage: true } });
    let text = '',
      finish: string | null = null,
      role: string | undefined,
      usage: unknown = null;
    for await (const ch of s) {
      if (ch.usage) usage = ch.usage;
      for (const d of ch.choices) {
        role ??= d.delta.role;
        text += d.delta.content ?? '';
        if (d.finish_reason) finish = d.finish_reason;
      }
    }
    assert.equal(role, 'assistant');
    assert.equal(text, once.choices[0]!.message.content);
    assert.equal(finish, once.choices[0]!.finish_reason);
    assert.deepEqual(usage, once.usage);
  }
  // the raw stream ends with data: [DONE]
  const raw = await readEvents(await post('/v1/chat/completions', { model: 'gpt2', messages, max_tokens: 3, stream: true }));
  assert.equal(raw[raw.length - 1], '[DONE]');
  assert.equal(JSON.parse(raw[0]!).object, 'chat.completion.chunk');
});

test('text completions: prompt as text or ids, logprobs, echo with the prompt tokens scored', async () => {
  const tok = Tokenizer.fromPretrained(models.llama);
  const prompt = 'the quick brown fox';
  const ids = tok.encode(prompt);
  const a = await client.completions.create({ model: 'llama', prompt, max_tokens: 6, temperature: 0 });
  const b = await client.completions.create({ model: 'llama', prompt: ids, max_tokens: 6, temperature: 0 });
  assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  assert.equal(a.object, 'text_completion');
  const e = await client.completions.create({ model: 'llama', prompt, max_tokens: 4, temperature: 0, logprobs: 2, echo: true });
  const c = e.choices[0]!;
  assert.ok(c.text.startsWith(prompt) && c.text.length > prompt.length, c.text);
  const lp = c.logprobs!;
  assert.equal(lp.tokens!.length, ids.length + 4);
  assert.equal(lp.token_logprobs![0], null, 'the first prompt token has no log-prob');
  assert.equal(lp.top_logprobs![0], null);
  const gen = (await client.completions.create({ model: 'llama', prompt: ids, max_tokens: 4, temperature: 0, logprobs: 0 })).choices[0]!.logprobs!;
  const genIds = gen.tokens!.map((t) => tok.encode(t)[0]!);
  const rows = forwardLogprobs(models.llama, [...ids, ...genIds]);
  for (let t = 1; t < ids.length + 4; t++) {
    const want = rows[t - 1]![t < ids.length ? ids[t]! : genIds[t - ids.length]!]!;
    assert.ok(Math.abs(lp.token_logprobs![t]! - want) < 1e-4, `position ${t}: ${lp.token_logprobs![t]} vs ${want}`);
    const top = lp.top_logprobs![t]!;
    assert.ok(Object.keys(top).length >= 2 && Object.keys(top).length <= 3, 'the 2 most likely tokens and the chosen one');
  }
  assert.equal(lp.text_offset![0], 0);
  // scoring only: echo with max_tokens 0
  const s = await client.completions.create({ model: 'llama', prompt, max_tokens: 0, logprobs: 1, echo: true });
  assert.equal(s.choices[0]!.text, prompt);
  assert.equal(s.choices[0]!.logprobs!.tokens!.length, ids.length);
  assert.deepEqual(s.usage, { prompt_tokens: ids.length, completion_tokens: 0, total_tokens: ids.length });
  // streamed text completion = the same text
  const st = await client.completions.create({ model: 'llama', prompt, max_tokens: 6, temperature: 0, stream: true });
  let text = '';
  for await (const ch of st) text += ch.choices[0]?.text ?? '';
  assert.equal(text, a.choices[0]!.text);
});

test('seeds, n and stop strings', async () => {
  const req = { model: 'gpt2', prompt: 'hello', max_tokens: 12, temperature: 1, seed: 5 };
  const x = await client.completions.create(req);
  const y = await client.completions.create(req);
  assert.equal(x.choices[0]!.text, y.choices[0]!.text, 'the same seed gives the same sample');
  const texts = new Set<string>();
  for (const seed of [1, 2, 3, 4]) texts.add((await client.completions.create({ ...req, seed })).choices[0]!.text);
  assert.ok(texts.size > 1, 'other seeds give other samples');
  const three = await client.completions.create({ ...req, n: 3 });
  assert.deepEqual(
    three.choices.map((c) => c.index),
    [0, 1, 2],
  );
  assert.equal(three.choices[0]!.text, x.choices[0]!.text, 'choice 0 is the n = 1 sample');
  assert.ok(new Set(three.choices.map((c) => c.text)).size > 1);
  assert.equal(three.usage!.completion_tokens, 36);
  const two = await client.completions.create({ ...req, prompt: ['hello', 'the dog'], n: 2 });
  assert.deepEqual(
    two.choices.map((c) => c.index),
    [0, 1, 2, 3],
  );
  assert.equal(two.choices[0]!.text, x.choices[0]!.text);
  // a stop string cuts the text before it
  const full = x.choices[0]!.text;
  const stop = full.slice(4, 6);
  assert.ok(stop.length === 2, full);
  const cut = await client.completions.create({ ...req, stop: [stop] });
  assert.equal(cut.choices[0]!.text, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.choices[0]!.finish_reason, 'stop');
  const sCut = await client.completions.create({ ...req, stop, stream: true });
  let text = '',
    finish = null;
  for await (const ch of sCut) {
    text += ch.choices[0]?.text ?? '';
    finish = ch.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, cut.choices[0]!.text);
  assert.equal(finish, 'stop');
});

test('a LoRA adapter is served under its own name, in the same batch as its base', async () => {
  const req = (model: string) => client.completions.create({ model, prompt: 'the lazy dog', max_tokens: 10, temperature: 0 });
  const [b, l] = await Promise.all([req('gpt2'), req('lora')]);
  assert.notEqual(b.choices[0]!.text, l.choices[0]!.text);
  assert.equal((await req('lora')).choices[0]!.text, l.choices[0]!.text);
});

test('refusals: OpenAI error JSON with the right status, and the server stays up', async () => {
  const cases: [string, unknown, number, RegExp, Record<string, string>?][] = [
    ['/v1/chat/completions', '{"model": "gpt2", "messages": [', 400, /not valid JSON/],
    ['/v1/chat/completions', '[1, 2]', 400, /must be a JSON object/],
    ['/v1/chat/completions', { model: 'gpt2', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }, 400, /temperature: expected a number/],
    ['/v1/chat/completions', { model: 'gpt2', messages: [{ role: 'user', content: 'x' }], max_tokens: 2.5 }, 400, /max_tokens: expected an integer/],
    ['/v1/chat/completions', { model: 'gpt2', messages: 'hi' }, 400, /messages: expected a non-empty list/],
    ['/v1/chat/completions', { model: 'gpt2', messages: [{ role: 'wizard', content: 'x' }] }, 400, /messages\[0\]\.role/],
    ['/v1/chat/completions', { model: 'gpt2', messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 400, /needs logprobs: true/],
    ['/v1/chat/completions', { model: 'gpt2', messages: [{ role: 'user', content: 'x' }], frequency_penalty: 0.5 }, 400, /frequency penalty is not supported/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, 400, /model: is required/],
    ['/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }, 404, /does not exist/],
    ['/v1/chat/completions', { model: 'plain', messages: [{ role: 'user', content: 'x' }] }, 400, /has no chat template/],
    ['/v1/completions', { model: 'gpt2', prompt: 'x', max_tokens: 70 }, 400, /the prompt \(1 tokens\) plus max_tokens \(70\) is 71 tokens, more than the model's context of 64 tokens/],
    ['/v1/completions', { model: 'gpt2', prompt: Array.from({ length: 64 }, () => 5) }, 400, /the prompt is 64 tokens, and the model's context is 64 tokens/],
    ['/v1/completions', { model: 'gpt2', prompt: [5, 1000] }, 400, /token id 1000 is outside the vocabulary/],
    ['/v1/completions', { model: 'gpt2', prompt: { text: 'x' } }, 400, /prompt: expected a string/],
    ['/v1/completions', { model: 'gpt2', prompt: 'x', n: 99 }, 400, /n: must be <= 16/],
    ['/v1/completions', 'x'.repeat(70_000), 413, /over the limit of 65536 bytes/],
    ['/v1/completions', { model: 'gpt2', prompt: 'x' }, 415, /expected Content-Type application\/json/, { 'Content-Type': 'text/plain' }],
    ['/v1/nothing', {}, 404, /no such route/],
  ];
  for (const [path, body, status, message, headers] of cases) {
    const r = await post(path, body, headers);
    const j = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 80)}: ${j.error?.message}`);
    assert.match(j.error.message, message);
    assert.equal(typeof j.error.type, 'string');
    assert.ok(!/at .*\.js:\d+/.test(j.error.message), 'no stack trace');
  }
  const get = await fetch(base + '/v1/completions');
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
  // a page on another site reaching 127.0.0.1 through DNS rebinding sends its own Host name
  const wrongHost = await new Promise<number>((resolve, reject) => {
    const r = httpRequest(base + '/v1/models', { headers: { Host: 'evil.example' } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    r.on('error', reject);
    r.end();
  });
  assert.equal(wrongHost, 421);
  // unknown fields are ignored, as OpenAI does
  const ok = await post('/v1/completions', { model: 'gpt2', prompt: 'x', max_tokens: 2, some_new_field: { a: 1 } });
  assert.equal(ok.status, 200);
  // the openai client sees the same errors
  await assert.rejects(
    client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'x' }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /no chat template/.test(e.message),
  );
  await assert.rejects(client.completions.create({ model: 'nope', prompt: 'x' }), (e: unknown) => e instanceof OpenAI.NotFoundError);
  assert.equal((await fetch(base + '/health')).status, 200);
});

test('429 with Retry-After past the queue; a client that disconnects mid-stream frees its slot at once', async () => {
  const slow = makeSlowModel(join(root, 'slow'));
  const s = await startServer({ models: [{ name: 'slow', dir: slow }], port: 0, maxBatch: 1, maxQueue: 1 });
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const long = { model: 'slow', prompt: 'hello', max_tokens: 600, temperature: 0 };
    // how long the whole long request takes when it runs to the end
    const t0 = performance.now();
    const full = await c.completions.create(long);
    const fullMs = performance.now() - t0;
    assert.equal(full.usage!.completion_tokens, 600, 'the greedy run reaches max_tokens');
    // the batch holds one sequence: a streaming request takes it, a second waits, a third is refused
    const ac = new AbortController();
    const stream = await c.completions.create({ ...long, stream: true }, { signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const waiting = c.completions.create({ model: 'slow', prompt: 'hi', max_tokens: 1 });
    for (let i = 0; i < 100 && s.engine.queued < 1; i++) await new Promise((r) => setTimeout(r, 5));
    const refused = await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'slow', prompt: 'x', max_tokens: 1 }) });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'rate_limit_exceeded');
    // disconnect: the waiting request gets the slot long before the stream would have ended
    const t1 = performance.now();
    ac.abort();
    const w = await waiting;
    const waitedMs = performance.now() - t1;
    assert.equal(w.choices.length, 1);
    assert.ok(waitedMs < fullMs / 3, `the slot was freed after ${waitedMs.toFixed(0)} ms (the whole stream takes ${fullMs.toFixed(0)} ms)`);
    assert.equal(s.engine.inFlight, 0);
  } finally {
    await s.close();
  }
});

test('the per-request time limit ends a long request with what it has (finish_reason length)', async () => {
  const slow = existsSync(join(root, 'slow', 'config.json')) ? join(root, 'slow') : makeSlowModel(join(root, 'slow'));
  const s = await startServer({ models: [{ name: 'slow', dir: slow }], port: 0, requestTimeoutMs: 300 });
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const t0 = performance.now();
    const r = await c.completions.create({ model: 'slow', prompt: 'hello', max_tokens: 1000, temperature: 0 });
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.ok(r.usage!.completion_tokens > 0 && r.usage!.completion_tokens < 1000, `${r.usage!.completion_tokens} tokens`);
    assert.ok(performance.now() - t0 < 3000);
    for (let i = 0; i < 100 && s.engine.inFlight > 0; i++) await new Promise((res) => setTimeout(res, 5));
    assert.equal(s.engine.inFlight, 0, 'its sequence left the batch');
  } finally {
    await s.close();
  }
});

test('a server on another address needs --api-key: Bearer checked on every route but /health', async () => {
  await assert.rejects(startServer({ models: [{ name: 'gpt2', dir: models.gpt2 }], host: '0.0.0.0', port: 0 }), /needs an API key/);
  const s = await startServer({ models: [{ name: 'gpt2', dir: models.gpt2 }], host: '0.0.0.0', port: 0, apiKey: 'sekret' });
  try {
    const url = `http://127.0.0.1:${s.port}`;
    assert.equal((await fetch(url + '/health')).status, 200);
    for (const auth of [undefined, 'Bearer wrong', 'Basic c2VrcmV0']) {
      const r = await fetch(url + '/v1/models', { headers: auth ? { Authorization: auth } : {} });
      assert.equal(r.status, 401, String(auth));
      assert.equal(((await r.json()) as { error: { type: string } }).error.type, 'authentication_error');
    }
    const r = await fetch(url + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 401);
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sekret', maxRetries: 0 });
    assert.equal((await c.completions.create({ model: 'gpt2', prompt: 'hi', max_tokens: 2 })).choices.length, 1);
    await assert.rejects(new OpenAI({ baseURL: `${url}/v1`, apiKey: 'nope', maxRetries: 0 }).models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  } finally {
    await s.close();
  }
});

test("alignkit's AI-feedback client (OpenAITextModel) against the server: generation and option log-probs", async () => {
  const m = new OpenAITextModel({ baseURL: `${base}/v1`, model: 'gpt2', maxRetries: 0 });
  const [g] = await m.generate([{ prompt: 'hello world', maxTokens: 5, temperature: 0.7, seed: 2 }]);
  const direct = await client.completions.create({ model: 'gpt2', prompt: 'hello world', max_tokens: 5, temperature: 0.7, seed: 2 });
  assert.equal(g!.text, direct.choices[0]!.text);
  assert.equal(g!.tokens, 5);
  const chat = new OpenAITextModel({ baseURL: `${base}/v1`, model: 'llama', chat: true, maxRetries: 0 });
  const [h] = await chat.generate([{ prompt: [{ role: 'user', content: 'hi' }], maxTokens: 4, temperature: 0 }]);
  assert.equal(typeof h!.text, 'string');
  // options: two of the tokens the server ranks first after the prompt
  const prompt = 'Is it good? The answer is:';
  const top = (await client.completions.create({ model: 'gpt2', prompt, max_tokens: 1, temperature: 0, logprobs: 20 })).choices[0]!.logprobs!.top_logprobs![0]!;
  const options = Object.keys(top)
    .map((t) => t.trim())
    .filter((t) => t && !t.startsWith('('))
    .slice(0, 2);
  assert.equal(options.length, 2);
  const [lp] = await m.choiceLogprobs([{ prompt, options }]);
  for (const [i, o] of options.entries()) {
    const parts = Object.entries(top)
      .filter(([t]) => t.trim().replace(/^\(/, '') === o)
      .map(([, l]) => l);
    const want = Math.log(parts.reduce((s, l) => s + Math.exp(l), 0));
    assert.ok(Math.abs(lp![i]! - want) < 1e-9, `${o}: ${lp![i]} vs ${want}`);
  }
  const unauthorised = new OpenAITextModel({ baseURL: `${base}/v1`, maxRetries: 0 });
  assert.equal((await unauthorised.generate([{ prompt: 'x', maxTokens: 1, temperature: 0 }])).length, 1, 'the model name comes from /v1/models');
});

test("Node's own 400 and 431 (a malformed request line, oversized headers) come in OpenAI's error shape", async () => {
  const { connect } = await import('node:net');
  const port = Number(new URL(base).port);
  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      let got = '';
      const sock = connect({ host: '127.0.0.1', port }, () => sock.write(text));
      sock
        .on('data', (c: Buffer) => (got += c.toString()))
        .on('end', () => resolve(got))
        .on('error', reject);
    });
  const bodyOf = (reply: string) => JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { error: { message: string; type: string } };
  const junk = await raw('NOT A REQUEST\r\n\r\n');
  assert.match(junk, /^HTTP\/1\.1 400 Bad Request/);
  assert.match(bodyOf(junk).error.message, /malformed HTTP request/);
  assert.equal(bodyOf(junk).error.type, 'invalid_request_error');
  const big = await raw(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 431 /);
  assert.match(bodyOf(big).error.message, /request headers are over the size limit/);
  assert.equal((await fetch(`${base}/health`)).status, 200, 'the server stays up');
});
