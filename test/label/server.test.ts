// The labeling server over real HTTP on 127.0.0.1: nothing answers without a valid token, annotators reach only
// their own assignments and labels, malformed or oversized posts get a 4xx with a reason and change nothing, and
// 50 annotators posting at once lose no acknowledged label and duplicate none.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { FeedbackDB } from '../../src/label/db.js';
import { exportPreferences } from '../../src/label/export.js';
import type { PairRecord } from '../../src/label/inputs.js';
import { type LabelServer, MAX_BODY, startServer } from '../../src/label/server.js';
import { cleanTmp, request, tmp } from './helpers.js';
import { readFileSync } from 'node:fs';

let store: FeedbackDB;
let server: LabelServer;
let alice: string, bob: string;

function pairs(n: number): PairRecord[] {
  return Array.from({ length: n }, (_, k) => ({ line: k + 1, id: null, prompt: `prompt #${k}`, responseA: `a-${k}`, responseB: `b-${k}`, sourceA: null, sourceB: null }));
}

before(async () => {
  store = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  alice = store.addAnnotator('alice').token;
  bob = store.addAnnotator('bob').token;
  store.openRound({ source: 'pairs', input: 'pairs.jsonl', pairs: pairs(10) });
  server = await startServer({ store, port: 0 });
});

after(async () => {
  await server.close();
  store.close();
  cleanTmp();
});

const labelCount = () => (store.db.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n;
const api = (path: string) => new URL(path, server.url).href;

test('the server listens on 127.0.0.1 only', async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal(server.address, '127.0.0.1', 'the socket is bound to the loopback address, not 0.0.0.0');
  // this machine's other addresses do not reach it
  const { networkInterfaces } = await import('node:os');
  const { connect } = await import('node:net');
  const others = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
  for (const host of others) {
    const code = await new Promise<string>((res) => {
      const sock = connect({ host, port: server.port, timeout: 2000 }, () => (sock.destroy(), res('connected')));
      sock.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? 'error')).on('timeout', () => (sock.destroy(), res('timeout')));
    });
    assert.notEqual(code, 'connected', `reachable on ${host}:${server.port}`);
  }
});

test('no page or API answers without a valid token', async () => {
  const before = labelCount();
  const page = await request(api('/'));
  assert.equal(page.status, 401);
  assert.match(page.text, /<form class="card" method="post" action="\/login">/, 'only the sign-in form');
  assert.doesNotMatch(page.text, /api\/next|<script/);
  for (const [path, init] of [
    ['/api/next', {}],
    ['/api/labels', {}],
    ['/api/label', { method: 'POST', json: { assignmentId: 1, choice: 'left' } }],
    ['/api/undo', { method: 'POST', json: {} }],
    ['/anything', {}],
    ['/api/next', { token: 'ak_not-a-token' }],
    ['/api/next', { token: '' }],
    ['/api/next', { headers: { Cookie: 'ak_session=aks_forged' } }],
    ['/', { headers: { Cookie: 'ak_session=aks_forged' } }],
    ['/api/next', { headers: { Authorization: `Basic ${Buffer.from(`alice:${alice}`).toString('base64')}` } }],
  ] as const) {
    const r = await request(api(path), init as RequestInit);
    assert.equal(r.status, 401, `${path} ${JSON.stringify(init)}`);
    if (path !== '/') assert.match(r.body.error, /sign in first/);
  }
  const wrong = await request(api('/login'), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'token=ak_guess' });
  assert.equal(wrong.status, 401);
  assert.match(wrong.text, /That token is not valid/);
  assert.equal(wrong.headers.get('set-cookie'), null);
  assert.equal(labelCount(), before);
});

test('signing in sets an HttpOnly SameSite=Strict cookie; pages carry a nonce-only Content-Security-Policy', async () => {
  const r = await request(api('/login'), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(alice)}` });
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), '/');
  const cookie = r.headers.get('set-cookie')!;
  assert.match(cookie, /^ak_session=aks_[\w-]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
  const page = await request(api('/'), { headers: { Cookie: cookie.split(';')[0]! } });
  assert.equal(page.status, 200);
  assert.match(page.text, /alice/);
  const csp = page.headers.get('content-security-policy')!;
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1]!;
  assert.doesNotMatch(csp, /unsafe/);
  assert.match(csp, /default-src 'none'/);
  assert.ok(page.text.includes(`<script nonce="${nonce}">`));
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
});

test('requests for another Host or from another Origin are refused', async () => {
  const hostReply = await new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/api/next', headers: { Host: 'evil.example', Authorization: `Bearer ${alice}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(hostReply, 421, 'DNS rebinding: a page on another name cannot reach the server');
  const before = labelCount();
  const next = await request(api('/api/next'), { token: alice });
  const r = await request(api('/api/label'), { method: 'POST', token: alice, headers: { Origin: 'http://evil.example' }, json: { assignmentId: next.body.item.assignmentId, choice: 'left' } });
  assert.equal(r.status, 403);
  assert.match(r.body.error, /cross-origin/);
  assert.equal(labelCount(), before);
});

test("one annotator cannot read or change another's labels", async () => {
  const a = await request(api('/api/next'), { token: alice });
  assert.equal(a.status, 200);
  const mine = a.body.item.assignmentId as number;
  const posted = await request(api('/api/label'), { method: 'POST', token: alice, json: { assignmentId: mine, choice: 'left', reason: 'alice says' } });
  assert.equal(posted.status, 200);
  const before = labelCount();
  // bob cannot label alice's assignment (already labeled or not: it is not his)
  const next = (await request(api('/api/next'), { token: alice })).body.item.assignmentId as number;
  for (const id of [mine, next]) {
    const r = await request(api('/api/label'), { method: 'POST', token: bob, json: { assignmentId: id, choice: 'right' } });
    assert.equal(r.status, 404, `assignment ${id}`);
    assert.match(r.body.error, /no assignment \d+ for you/);
  }
  // bob's undo finds nothing of his; alice's label stands
  const u = await request(api('/api/undo'), { method: 'POST', token: bob, json: {} });
  assert.equal(u.status, 409);
  assert.equal(labelCount(), before);
  // bob's label list holds none of alice's labels; bob's next pair is not alice's open one
  const list = await request(api('/api/labels'), { token: bob });
  assert.deepEqual(list.body, { annotator: 'bob', labels: [] });
  const bobNext = await request(api('/api/next'), { token: bob });
  assert.notEqual(bobNext.body.item.assignmentId, next);
  assert.notEqual(bobNext.body.item.assignmentId, mine);
  const aliceList = await request(api('/api/labels'), { token: alice });
  assert.equal(aliceList.body.labels.length, 1);
  assert.equal(aliceList.body.labels[0].reason, 'alice says');
});

test('malformed or oversized posts get a 4xx with a reason and change nothing', async () => {
  const id = (await request(api('/api/next'), { token: alice })).body.item.assignmentId as number;
  const before = labelCount();
  const post = (body: string | Buffer, type = 'application/json') =>
    request(api('/api/label'), { method: 'POST', token: alice, headers: { 'Content-Type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  const cases: [Promise<Awaited<ReturnType<typeof request>>>, number, RegExp][] = [
    [post('{"assignmentId": 1, "choice": '), 400, /not valid JSON/],
    [post(`{"assignmentId":${id},"choice":"left"}`, 'text/plain'), 415, /application\/json/],
    [post(`{"assignmentId":${id},"choice":"left"}`, 'application/x-www-form-urlencoded'), 415, /application\/json/],
    [post('[1,2]'), 400, /JSON object/],
    [post('null'), 400, /JSON object/],
    [post(`{"assignmentId":${id},"choice":"left","admin":true}`), 400, /unknown field "admin"/],
    [post(`{"assignmentId":${id},"choice":"A"}`), 400, /field "choice": expected one of left, right, tie, both_bad/],
    [post(`{"assignmentId":${id}}`), 400, /field "choice"/],
    [post(`{"assignmentId":"${id}","choice":"left"}`), 400, /field "assignmentId": expected a positive integer/],
    [post(`{"assignmentId":${id}.5,"choice":"left"}`), 400, /field "assignmentId"/],
    [post(`{"assignmentId":-1,"choice":"left"}`), 400, /field "assignmentId"/],
    [post(`{"choice":"left"}`), 400, /field "assignmentId"/],
    [post(JSON.stringify({ assignmentId: id, choice: 'left', reason: 'x'.repeat(501) })), 400, /field "reason": at most 500 characters/],
    [post(JSON.stringify({ assignmentId: id, choice: 'left', reason: 'a\u0000b' })), 400, /control characters/],
    [post(JSON.stringify({ assignmentId: id, choice: 'left', reason: 7 })), 400, /field "reason": expected a string/],
    [post(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 400, /not valid UTF-8/],
    [post(JSON.stringify({ assignmentId: id, choice: 'left', reason: 'y'.repeat(MAX_BODY) })), 413, /over the limit/],
    [post(`{"assignmentId":999999,"choice":"left"}`), 404, /no assignment 999999 for you/],
    [request(api('/api/label'), { method: 'GET', token: alice }), 405, /not allowed/],
    [request(api('/api/undo'), { method: 'POST', token: alice, headers: { 'Content-Type': 'application/json' }, body: '{"all":true}' }), 400, /unknown field "all"/],
  ];
  for (const [pending, status, re] of cases) {
    const r = await pending;
    assert.equal(r.status, status, `${re}: ${r.text}`);
    assert.match(r.body.error, re);
  }
  // a body streamed without Content-Length past the limit
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: server.port, path: '/api/label', method: 'POST', headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } },
      (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      },
    );
    req.on('error', reject);
    const chunk = Buffer.alloc(4096, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < 40) {
        sent++;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(chunked.status, 413);
  assert.match(JSON.parse(chunked.body).error, /over the limit/);
  // a huge announced body is refused before any of it is read
  const announced = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/api/label',
        method: 'POST',
        headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json', 'Content-Length': String(64 << 20) },
      },
      (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      },
    );
    req.on('error', reject);
    req.flushHeaders();
  });
  assert.equal(announced.status, 413);
  assert.match(JSON.parse(announced.body).error, /of 67108864 bytes is over the limit/);
  assert.equal(labelCount(), before, 'nothing was stored');
  const r = await request(api('/api/label'), { method: 'POST', token: alice, json: { assignmentId: id, choice: 'tie', reason: '  ' } });
  assert.equal(r.status, 200, 'the same assignment still takes a good label');
  assert.equal(labelCount(), before + 1);
});

test('the same label posted ten times at once is stored once', async () => {
  const id = (await request(api('/api/next'), { token: bob })).body.item.assignmentId as number;
  const before = labelCount();
  const replies = await Promise.all(Array.from({ length: 10 }, () => request(api('/api/label'), { method: 'POST', token: bob, json: { assignmentId: id, choice: 'right' } })));
  assert.deepEqual(replies.map((r) => r.status).sort(), [200, ...Array(9).fill(409)]);
  assert.equal(labelCount(), before + 1);
});

test('50 concurrent annotators: every acknowledged label is in the export, none twice', async () => {
  const s = FeedbackDB.open(join(tmp(), 'load.sqlite'));
  const N = 50,
    PER = 4;
  const tokens = Array.from({ length: N }, (_, i) => s.addAnnotator(`ann${i}`).token);
  s.openRound({ source: 'pairs', input: 'load.jsonl', agreement: 0.5, pairs: pairs(N * PER) });
  const srv = await startServer({ store: s, port: 0 });
  try {
    const acked: { annotator: string; prompt: string; chosen: string; rejected: string }[] = [];
    await Promise.all(
      tokens.map(async (token, i) => {
        for (let k = 0; k < PER; k++) {
          const next = await request(new URL('/api/next', srv.url).href, { token });
          assert.equal(next.status, 200);
          const item = next.body.item;
          assert.ok(item, `ann${i} got no pair at step ${k}`);
          const side = (i + k) % 2 ? 'left' : 'right';
          const r = await request(new URL('/api/label', srv.url).href, { method: 'POST', token, json: { assignmentId: item.assignmentId, choice: side } });
          assert.equal(r.status, 200, r.text);
          acked.push({ annotator: `ann${i}`, prompt: item.prompt, chosen: item[side], rejected: item[side === 'left' ? 'right' : 'left'] });
        }
      }),
    );
    assert.equal(acked.length, N * PER);
    const out = join(tmp(), 'load.jsonl');
    assert.deepEqual(exportPreferences(s, out, undefined, 'all'), { written: N * PER, ties: 0, bothBad: 0, identical: 0, disagreements: 0, converted: 0, hidden: 0, simulated: 0 });
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as (typeof acked)[number]);
    const key = (x: { annotator: string; prompt: string; chosen: string; rejected: string }) => JSON.stringify([x.annotator, x.prompt, x.chosen, x.rejected]);
    assert.equal(new Set(rows.map(key)).size, rows.length, 'no label twice');
    assert.deepEqual(new Set(rows.map(key)), new Set(acked.map(key)), 'exactly the acknowledged labels');
    // no pair got more labels than it wants; pairs wanting two got two different annotators
    const over = s.db.prepare('SELECT count(*) AS n FROM pairs WHERE labeled > want').get() as { n: number };
    assert.equal(over.n, 0);
    const twice = s.db.prepare('SELECT count(*) AS n FROM (SELECT pair_id FROM labels GROUP BY pair_id HAVING count(DISTINCT annotator_id) = 2)').get() as { n: number };
    assert.ok(twice.n > 0, 'some pairs were labeled by two annotators');
  } finally {
    await srv.close();
    s.close();
  }
});
