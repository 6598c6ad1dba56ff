// The labeling app's data-loss and access paths (issue 11): an export never overwrites the database or an input;
// a database that cannot be written, a folder or a non-SQLite file is refused at start naming the path; another
// process holding the write lock delays only the writes (503 with Retry-After, never a lost acknowledged label),
// not the other requests; a second server on one database is refused naming the first; tokens and sessions can
// be revoked at once; tunnels and proxies are reached with --allow-host and --trust-proxy; Node's own 400/431
// carry a JSON reason; a lone surrogate in a reason is refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { labelMain } from '../helpers/cli.js';
import { FeedbackDB } from '../../src/label/db.js';
import type { PairRecord } from '../../src/label/inputs.js';
import { startServer } from '../../src/label/server.js';
import { CLI, cleanTmp, makePolicy, request, serveChild, tmp, writeJsonl } from './helpers.js';

after(cleanTmp);

function capture(): { stream: Writable; text: () => string } {
  let t = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((t += String(c)), cb()) }), text: () => t };
}

function pairs(n: number): PairRecord[] {
  return Array.from({ length: n }, (_, k) => ({ line: k + 1, id: null, prompt: `prompt #${k}`, responseA: `a-${k}`, responseB: `b-${k}`, sourceA: null, sourceB: null }));
}

const labelCount = (s: FeedbackDB) => (s.db.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n;

/** Signs in through the form; returns the session cookie (name=value). */
async function signIn(url: string, token: string, headers: Record<string, string> = {}): Promise<{ status: number; cookie: string | null; setCookie: string | null }> {
  const r = await request(new URL('/login', url).href, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: `token=${encodeURIComponent(token)}` });
  const set = r.headers.get('set-cookie');
  return { status: r.status, cookie: set ? set.split(';')[0]! : null, setCookie: set };
}

test('export refuses to write over the database, its -wal/-shm files or an input file, and the database stays intact', async () => {
  const dir = tmp();
  const db = join(dir, 'fb.sqlite');
  const input = writeJsonl(join(dir, 'pairs.jsonl'), [{ prompt: 'Q', response_a: 'x', response_b: 'y' }]);
  const o = capture();
  assert.equal(await labelMain(['round', '--db', db, '--pairs', input], o.stream, o.stream), 0);
  const before = readFileSync(db);
  for (const out of [db, `${db}-wal`, `${db}-shm`, input, join(dir, '.', 'fb.sqlite')]) {
    const e = capture();
    assert.equal(await labelMain(['export', '--db', db, '--out', out], e.stream, e.stream), 2, out);
    assert.match(e.text(), /--out .* is (the database|the database's -(wal|shm) file|round 1's input)/, e.text());
  }
  assert.deepEqual(readFileSync(db).subarray(0, 16), before.subarray(0, 16));
  assert.equal(readFileSync(input, 'utf8').trim().startsWith('{"prompt":"Q"'), true, 'the input is untouched');
  const s = FeedbackDB.open(db);
  try {
    assert.equal(s.rounds().length, 1);
  } finally {
    s.close();
  }
});

test('a folder, a non-SQLite file and an unwritable database are refused at start, naming the path', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'folder.sqlite'));
  assert.throws(
    () => FeedbackDB.open(join(dir, 'folder.sqlite')),
    (e: Error) => e.message.startsWith(join(dir, 'folder.sqlite')) && /is a folder/.test(e.message),
  );
  writeFileSync(join(dir, 'notes.sqlite'), 'these are my notes, not a database\n'.repeat(100));
  assert.throws(
    () => FeedbackDB.open(join(dir, 'notes.sqlite')),
    (e: Error) => e.message.startsWith(join(dir, 'notes.sqlite')) && /not a SQLite database/.test(e.message),
  );
  assert.equal(readFileSync(join(dir, 'notes.sqlite'), 'utf8').startsWith('these are my notes'), true, 'the file is untouched');

  // an existing database this process may not write: root may write any file, so as root the server runs as
  // nobody (the check must hold for the user who runs it)
  const ro = join(dir, 'ro');
  mkdirSync(ro);
  const db = join(ro, 'fb.sqlite');
  FeedbackDB.open(db).close();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chmodSync(dir, 0o755);
  else {
    chmodSync(db, 0o444);
    chmodSync(ro, 0o555);
  }
  const proc = spawn(process.execPath, [CLI(), 'label', 'serve', '--db', db, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
  let err = '',
    out = '';
  proc.stderr.on('data', (c: Buffer) => (err += c));
  proc.stdout.on('data', (c: Buffer) => (out += c));
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  if (!asRoot) chmodSync(ro, 0o755);
  assert.notEqual(code, 0, `the server started on a read-only database: ${out}`);
  assert.doesNotMatch(out, /listening/);
  assert.match(err, new RegExp(`${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: (the database file|its folder).* is not writable`), err);
});

test('another process holding the write lock: other requests are answered at once, the write gets 503 with Retry-After, nothing acknowledged is lost', { timeout: 60_000 }, async () => {
  const db = join(tmp(), 'fb.sqlite');
  const store = FeedbackDB.open(db);
  const token = store.addAnnotator('ann').token;
  store.openRound({ source: 'pairs', input: 'pairs.jsonl', pairs: pairs(4) });
  const server = await startServer({ store, port: 0, writeWaitMs: 800 });
  const other = new Database(db);
  try {
    const first = (await request(new URL('/api/next', server.url).href, { token })).body.item;
    assert.ok(first);
    other.exec('BEGIN IMMEDIATE'); // the other process takes the write lock and keeps it
    const t0 = Date.now();
    const post = request(new URL('/api/label', server.url).href, { method: 'POST', token, json: { assignmentId: first.assignmentId, choice: 'left' } });
    // meanwhile the sign-in page and reads answer without waiting for the lock
    await new Promise((r) => setTimeout(r, 50));
    const t1 = Date.now();
    const page = await request(server.url);
    const pageMs = Date.now() - t1;
    assert.equal(page.status, 401);
    assert.ok(pageMs < 300, `the sign-in page took ${pageMs} ms while a write waited for the lock`);
    const busy = await post;
    const waited = Date.now() - t0;
    assert.equal(busy.status, 503, busy.text);
    assert.equal(busy.headers.get('retry-after'), '2');
    assert.match(busy.body.error, /locked by another process .*nothing was changed/);
    assert.ok(waited >= 700 && waited < 5000, `answered after ${waited} ms`);
    assert.equal(labelCount(store), 0, 'a refused write stored nothing');
    // the lock is released during a second try: that write waits, then lands
    const again = request(new URL('/api/label', server.url).href, { method: 'POST', token, json: { assignmentId: first.assignmentId, choice: 'left' } });
    await new Promise((r) => setTimeout(r, 200));
    other.exec('ROLLBACK');
    const ok = await again;
    assert.equal(ok.status, 200, ok.text);
    assert.equal(labelCount(store), 1);
    assert.equal(store.exportRows()[0]!.labelId, ok.body.labelId);
  } finally {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    await server.close();
    store.close();
  }
});

test('a second server on the same database is refused, naming the first one’s pid and port; a stale lock is taken over', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const db = join(dir, 'fb.sqlite');
  const input = writeJsonl(join(dir, 'pairs.jsonl'), [{ prompt: 'Q', response_a: 'x', response_b: 'y' }]);
  const o = capture();
  assert.equal(await labelMain(['round', '--db', db, '--pairs', input], o.stream, o.stream), 0);
  const first = await serveChild(['--db', db]);
  try {
    const port = new URL(first.url).port;
    const second = spawn(process.execPath, [CLI(), 'label', 'serve', '--db', db, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    second.stderr.on('data', (c: Buffer) => (err += c));
    const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
    assert.notEqual(code, 0);
    assert.match(err, new RegExp(`a labeling server already serves this database \\(pid ${first.proc.pid}, port ${port}`), err);
    // in one process too
    const store = FeedbackDB.open(db);
    await assert.rejects(startServer({ store, port: 0 }), new RegExp(`pid ${first.proc.pid}, port ${port}`));
    store.close();
  } finally {
    first.proc.kill('SIGKILL');
    await first.exited;
  }
  // kill -9 left its lock behind: the next server takes it over
  assert.equal(existsSync(`${db}.lock`), true);
  const next = await serveChild(['--db', db]);
  assert.equal(JSON.parse(readFileSync(`${db}.lock`, 'utf8')).pid, next.proc.pid);
  next.proc.kill('SIGTERM');
  assert.equal(await next.exited, 0, next.stderr());
  assert.equal(existsSync(`${db}.lock`), false, 'a server that stops removes its lock');
});

test('remove-annotator, rotate-token and logout take effect at once, even for a replayed cookie; labels are kept', async () => {
  const dir = tmp();
  const db = join(dir, 'fb.sqlite');
  const store = FeedbackDB.open(db);
  const alice = store.addAnnotator('alice').token;
  const bob = store.addAnnotator('bob').token;
  const carol = store.addAnnotator('carol').token;
  store.openRound({ source: 'pairs', input: 'pairs.jsonl', pairs: pairs(6) });
  const server = await startServer({ store, port: 0 });
  const next = (init: { token?: string; headers?: Record<string, string> }) => request(new URL('/api/next', server.url).href, init);
  try {
    // a label from bob, then bob is removed: token and session stop working, the label stays
    const bobSession = (await signIn(server.url, bob)).cookie!;
    assert.match(bobSession, /^ak_session=aks_/);
    assert.equal(bobSession.includes(bob), false, 'the cookie is a session id, not the token');
    const item = (await next({ headers: { Cookie: bobSession } })).body.item;
    assert.equal((await request(new URL('/api/label', server.url).href, { method: 'POST', headers: { Cookie: bobSession }, json: { assignmentId: item.assignmentId, choice: 'right' } })).status, 200);
    const o = capture();
    assert.equal(await labelMain(['remove-annotator', 'bob', '--db', db], o.stream, o.stream), 0, o.text());
    assert.equal((await next({ headers: { Cookie: bobSession } })).status, 401);
    assert.equal((await next({ token: bob })).status, 401);
    assert.equal((await signIn(server.url, bob)).status, 401);
    assert.deepEqual(
      store.exportRows().map((r) => r.annotator),
      ['bob'],
      'the removed annotator’s labels are kept',
    );
    const list = capture();
    assert.equal(await labelMain(['annotators', '--db', db], list.stream, list.stream), 0);
    assert.match(list.text(), /alice/);
    assert.doesNotMatch(list.text(), /\bbob\b/);

    // carol's token is rotated: the old token and her session stop, the new token works
    const carolSession = (await signIn(server.url, carol)).cookie!;
    assert.equal((await next({ headers: { Cookie: carolSession } })).status, 200);
    const r = capture();
    assert.equal(await labelMain(['rotate-token', 'carol', '--db', db], r.stream, capture().stream), 0);
    const fresh = r.text().trim();
    assert.match(fresh, /^ak_/);
    assert.notEqual(fresh, carol);
    assert.equal((await next({ headers: { Cookie: carolSession } })).status, 401);
    assert.equal((await next({ token: carol })).status, 401);
    assert.equal((await next({ token: fresh })).status, 200);

    // logout ends the session on the server: replaying the cookie afterwards is refused
    const s = (await signIn(server.url, alice)).cookie!;
    assert.equal((await request(server.url, { headers: { Cookie: s } })).status, 200);
    const out = await request(new URL('/logout', server.url).href, { method: 'POST', headers: { Cookie: s } });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await request(server.url, { headers: { Cookie: s } })).status, 401);
    assert.equal((await next({ headers: { Cookie: s } })).status, 401);
    assert.equal((await next({ token: alice })).status, 200, 'the token itself still signs in');
    // an unknown name is a usage error naming it
    const bad = capture();
    assert.equal(await labelMain(['remove-annotator', 'zed', '--db', db], bad.stream, bad.stream), 2);
    assert.match(bad.text(), /no annotator "zed"/);
  } finally {
    await server.close();
    store.close();
  }
});

/** A raw TCP forwarder on another local port: what `ssh -L 9000:127.0.0.1:PORT` gives a remote annotator. */
async function tunnel(toPort: () => number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv = createTcpServer((c) => {
    const up = connect(toPort(), '127.0.0.1');
    sockets.add(c).add(up);
    c.pipe(up).pipe(c);
    const end = () => (c.destroy(), up.destroy());
    c.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** A reverse proxy on loopback: what nginx with proxy_set_header X-Forwarded-Host/-Proto does for https://NAME/. */
async function reverseProxy(toPort: number, publicHost: string): Promise<{ port: number; close: () => Promise<void> }> {
  const srv = createHttpServer((req, res) => {
    const up = httpRequest(
      { host: '127.0.0.1', port: toPort, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${toPort}`, 'x-forwarded-host': publicHost, 'x-forwarded-proto': 'https' } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise((r) => (srv.closeAllConnections(), srv.close(() => r()))) };
}

test('an SSH tunnel on another port and a reverse proxy work with --allow-host and --trust-proxy (and are refused without)', async () => {
  const store = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  const token = store.addAnnotator('ann').token;
  store.openRound({ source: 'pairs', input: 'pairs.jsonl', pairs: pairs(4) });
  // each phase gets its own tunnel (its port is what the annotator's browser puts in Host and Origin), so that no
  // kept-alive connection to a closed server is reused
  async function throughTunnel(allow: (port: number) => string[] | undefined, body: (base: string, port: number) => Promise<void>): Promise<void> {
    let target = 0;
    const t = await tunnel(() => target);
    try {
      const allowHosts = allow(t.port);
      const srv = await startServer({ store, port: 0, ...(allowHosts ? { allowHosts } : {}) });
      target = srv.port;
      try {
        await body(`http://127.0.0.1:${t.port}/`, t.port);
      } finally {
        await srv.close();
      }
    } finally {
      await t.close();
    }
  }
  await throughTunnel(
    () => undefined,
    async (base) => {
      assert.equal((await request(new URL('/api/next', base).href, { token })).status, 421, 'the pinned Host check refuses the tunnel’s port');
    },
  );
  // an allowed name with a port allows that port only
  await throughTunnel(
    (port) => [`127.0.0.1:${port === 65535 ? 1 : port + 1}`],
    async (base) => {
      assert.equal((await request(new URL('/api/next', base).href, { token })).status, 421);
    },
  );
  // the tunnel's port allowed: sign in (a POST with the tunnel's Origin) and label, all through the tunnel
  await throughTunnel(
    (port) => [`127.0.0.1:${port}`],
    async (base, port) => {
      const s = await signIn(base, token, { Origin: `http://127.0.0.1:${port}` });
      assert.equal(s.status, 303);
      assert.doesNotMatch(s.setCookie!, /Secure/, 'plain http through the tunnel: no Secure flag');
      const item = (await request(new URL('/api/next', base).href, { headers: { Cookie: s.cookie! } })).body.item;
      assert.ok(item);
      const lab = await request(new URL('/api/label', base).href, {
        method: 'POST',
        headers: { Cookie: s.cookie!, Origin: `http://127.0.0.1:${port}` },
        json: { assignmentId: item.assignmentId, choice: 'left' },
      });
      assert.equal(lab.status, 200, lab.text);
      const foreign = await request(new URL('/api/label', base).href, {
        method: 'POST',
        headers: { Cookie: s.cookie!, Origin: 'http://evil.example' },
        json: { assignmentId: item.assignmentId, choice: 'left' },
      });
      assert.equal(foreign.status, 403, 'another Origin is still refused');
    },
  );

  // a reverse proxy serving https://labels.example.org: refused unless the proxy is trusted and the name allowed
  for (const [trustProxy, allowHosts, expect] of [
    [false, [], 403],
    [false, ['labels.example.org'], 303],
    [true, [], 421],
    [true, ['labels.example.org'], 303],
  ] as const) {
    const srv = await startServer({ store, port: 0, trustProxy, allowHosts: [...allowHosts] });
    const proxy = await reverseProxy(srv.port, 'labels.example.org');
    try {
      const s = await signIn(`http://127.0.0.1:${proxy.port}/`, token, { Origin: 'https://labels.example.org' });
      assert.equal(s.status, expect, `trustProxy ${trustProxy}, allowHosts ${allowHosts.join(',')}`);
      if (expect === 303) {
        // only a trusted proxy's X-Forwarded-Proto makes the cookie Secure (the name alone is allowed either way)
        if (trustProxy) assert.match(s.setCookie!, /; Secure/, 'the trusted proxy says https: the cookie is Secure');
        else assert.doesNotMatch(s.setCookie!, /Secure/, 'an untrusted hop says nothing about https');
        const next = await request(`http://127.0.0.1:${proxy.port}/api/next`, { headers: { Cookie: s.cookie! } });
        assert.equal(next.status, 200);
      }
    } finally {
      await proxy.close();
      await srv.close();
    }
  }
  // forwarded headers from a client (not through the trusted proxy's loopback hop) change nothing when not trusted
  const srv = await startServer({ store, port: 0, allowHosts: [] });
  try {
    const r = await request(new URL('/api/next', srv.url).href, { token, headers: { 'X-Forwarded-Host': 'labels.example.org' } });
    assert.equal(r.status, 200, 'without --trust-proxy the forwarded host is ignored');
  } finally {
    await srv.close();
    store.close();
  }
});

test('Node’s own 400 and 431 answers carry a JSON reason; a lone surrogate in a reason is refused and nothing is stored', async () => {
  const store = FeedbackDB.open(join(tmp(), 'fb.sqlite'));
  const token = store.addAnnotator('ann').token;
  store.openRound({ source: 'pairs', input: 'pairs.jsonl', pairs: pairs(2) });
  const server = await startServer({ store, port: 0 });
  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const c = connect(server.port, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('end', () => resolve(got));
      c.on('error', reject);
      c.write(text);
    });
  try {
    const big = await raw(`GET /api/next HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nX-Pad: ${'x'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.match(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error, /request headers are over the size limit/);
    const junk = await raw('THIS IS NOT HTTP\r\n\r\n');
    assert.match(junk, /^HTTP\/1\.1 400 /);
    assert.match(JSON.parse(junk.slice(junk.indexOf('\r\n\r\n') + 4)).error, /malformed HTTP request/);

    const item = (await request(new URL('/api/next', server.url).href, { token })).body.item;
    const r = await request(new URL('/api/label', server.url).href, {
      method: 'POST',
      token,
      headers: { 'Content-Type': 'application/json' },
      body: `{"assignmentId":${item.assignmentId},"choice":"left","reason":"fine \\ud800 here"}`,
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /field "reason": contains a lone surrogate/);
    assert.equal(labelCount(store), 0);
    const pair = await request(new URL('/api/label', server.url).href, { method: 'POST', token, json: { assignmentId: item.assignmentId, choice: 'left', reason: 'a pair 😀 is fine' } });
    assert.equal(pair.status, 200);
    assert.equal(store.exportRows()[0]!.reason, 'a pair 😀 is fine');
  } finally {
    await server.close();
    store.close();
  }
});

test('label round refuses --temperature 0 with a single policy (both responses would be the same text)', async () => {
  const dir = tmp();
  const policy = makePolicy(join(dir, 'policy'));
  const prompts = writeJsonl(join(dir, 'prompts.jsonl'), [{ prompt: 'Hello' }]);
  const e = capture();
  assert.equal(await labelMain(['round', '--db', join(dir, 'fb.sqlite'), '--policy', policy, '--prompts', prompts, '--temperature', '0'], e.stream, e.stream), 2);
  assert.match(e.text(), /--temperature 0 samples the same response twice/);
  const s = FeedbackDB.open(join(dir, 'fb.sqlite'));
  try {
    assert.equal(s.rounds().length, 0, 'no round was opened');
  } finally {
    s.close();
  }
  // with a second policy temperature 0 is fine
  copyFileSync(join(policy, 'config.json'), join(dir, 'unused.json'));
  const ok = capture();
  assert.equal(await labelMain(['round', '--db', join(dir, 'fb.sqlite'), '--policy', policy, '--policy-b', policy, '--prompts', prompts, '--temperature', '0'], ok.stream, ok.stream), 0, ok.text());
});
