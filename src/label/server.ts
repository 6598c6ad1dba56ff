// The labeling web server (node:http, 127.0.0.1 only): token sign-in, the labeling page and its JSON API. Every
// page and API call needs a valid annotator token (an HttpOnly SameSite=Strict cookie set at sign-in, or an
// `Authorization: Bearer` header); an annotator only ever reaches their own assignments and labels; bodies are
// size-limited and validated field by field; a label is committed to SQLite before the request is answered.
import { answerClientErrors } from '../io/http-client-errors.js';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BusyError, whenUnlocked } from './busy.js';
import { GroupCommit } from './group-commit.js';
import { type Annotator, type FeedbackDB, type Side, SIDES, StoreError } from './db.js';
import { acquireServerLock } from './lock.js';
import { labelPage, loginPage, pagePolicy } from './page.js';
import { Sampler } from './sampler.js';

interface ServeOptions {
  store: FeedbackDB;
  /** TCP port on 127.0.0.1 (0: any free port) */
  port?: number;
  /** an open assignment holds its pair this long, ms (default 30 minutes) */
  leaseMs?: number;
  /** pairs to keep sampled ahead of the annotators (default 8) */
  lookahead?: number;
  /** how often to look for a newly opened round, ms (default 1000) */
  pollMs?: number;
  /** how long a sign-in lasts, ms (default 12 hours) */
  sessionMs?: number;
  /**
   * More names the server answers to (`labels.example.org`, `localhost:9000`): what a reverse proxy or an SSH
   * tunnel on another port puts in the Host header. Without a port, any port. The Origin of a write must be one of
   * the allowed hosts too.
   */
  allowHosts?: readonly string[];
  /** believe X-Forwarded-Host / X-Forwarded-Proto from a proxy on this machine (loopback connections only) */
  trustProxy?: boolean;
  /**
   * How long a write waits for another process's lock on the database before the request is answered 503 with
   * Retry-After, ms (default 5000). It waits off the event loop: other requests are answered meanwhile.
   */
  writeWaitMs?: number;
  log?: (line: string) => void;
}

export interface LabelServer {
  url: string;
  port: number;
  /** the address the socket is bound to (always the loopback 127.0.0.1) */
  address: string;
  sampler: Sampler;
  /** how the writes were grouped into commits */
  commits: GroupCommit['stats'];
  close(): Promise<void>;
}

/** Largest request body accepted (a label with a 500-character reason is far below it). */
export const MAX_BODY = 16 * 1024;
const MAX_REASON = 500;
/** A refused body up to this size is read and dropped before answering (beyond it the connection is closed). */
const DRAIN_CAP = 1024 * 1024;
const COOKIE = 'ak_session';

/** The session cookie's value, if the request carries one. */
function cookieOf(req: IncomingMessage): string | null {
  const cookie = req.headers.cookie;
  if (!cookie) return null;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim();
  }
  return null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startServer(o: ServeOptions): Promise<LabelServer> {
  const store = o.store;
  const leaseMs = o.leaseMs ?? 30 * 60_000;
  const sessionMs = o.sessionMs ?? 12 * 3600_000;
  const extraHosts = (o.allowHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const h of extraHosts) if (!/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/.test(h)) throw new Error(`--allow-host ${JSON.stringify(h)}: expected NAME or NAME:PORT`);
  /** The host and scheme the client used: the Host header, or what a trusted proxy on loopback forwarded. */
  const effective = (req: IncomingMessage): { host: string | undefined; proto: 'http' | 'https' } => {
    const fromLoopback = ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(req.socket.remoteAddress ?? '');
    if (o.trustProxy && fromLoopback) {
      const fh = req.headers['x-forwarded-host'],
        fp = req.headers['x-forwarded-proto'];
      const host = (Array.isArray(fh) ? fh[0] : fh)?.split(',')[0]?.trim() ?? req.headers.host;
      const p = (Array.isArray(fp) ? fp[0] : fp)?.split(',')[0]?.trim();
      return { host, proto: p === 'https' ? 'https' : 'http' };
    }
    return { host: req.headers.host, proto: 'http' };
  };
  const hostAllowed = (host: string | undefined): boolean => {
    if (!host) return false;
    const h = host.toLowerCase();
    if (h === `127.0.0.1:${port}` || h === `localhost:${port}`) return true;
    return extraHosts.some((a) => a === h || (!/:\d+$/.test(a) && h.replace(/:\d+$/, '') === a));
  };
  const originAllowed = (origin: string, proto: string): boolean => {
    const m = /^(https?):\/\/([^/]+)$/.exec(origin);
    if (!m) return false;
    if ((m[2] === `127.0.0.1:${port}` || m[2] === `localhost:${port}`) && m[1] === 'http') return true;
    return hostAllowed(m[2]) && (m[1] === proto || m[1] === 'https');
  };
  const secureCookie = (req: IncomingMessage): boolean => effective(req).proto === 'https';
  const log = o.log ?? (() => {});
  const writeWaitMs = o.writeWaitMs ?? 5000;
  /** A store read, retried off the event loop in the rare case SQLite reports the database busy. */
  const db = <T>(fn: () => T): Promise<T> => whenUnlocked(fn, writeWaitMs);
  /**
   * A store write: run with the other writes of this turn of the event loop in one transaction, settled after
   * its commit (group-commit.ts); retried off the event loop while another process holds the write lock.
   */
  const commits = new GroupCommit(store.db, writeWaitMs);
  const write = <T>(fn: () => T): Promise<T> => commits.run(fn);
  // one server per database file, refused naming the first one's pid and port
  const lock = store.path === ':memory:' ? null : acquireServerLock(store.path);
  store.setBusyTimeout(20);
  const sampler = new Sampler(store, { leaseMs, lookahead: o.lookahead, pollMs: o.pollMs, log });
  let port = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { host, proto } = effective(req);
    if (!hostAllowed(host))
      throw new HttpError(
        421,
        `unexpected Host header ${JSON.stringify(host ?? null)} (the server answers to 127.0.0.1:${port}, localhost:${port}${extraHosts.length ? `, ${extraHosts.join(', ')}` : ''}; see --allow-host)`,
      );
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      const origin = req.headers.origin;
      if (origin !== undefined && !originAllowed(origin, proto)) throw new HttpError(403, `cross-origin request refused (Origin ${origin})`);
    }
    const path = url.pathname;

    if (path === '/login') {
      allow(method, ['POST']);
      const body = await readBody(req);
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) throw new HttpError(415, 'sign in with the form (application/x-www-form-urlencoded)');
      const token = new URLSearchParams(body.toString('utf8')).get('token')?.trim() ?? '';
      const who = await db(() => store.annotatorByToken(token));
      if (!who) return html(res, 401, (n) => loginPage(n, 'That token is not valid.'));
      // the cookie is a session the server can end (logout, token rotation, removal), never the token itself
      const session = await write(() => store.createSession(who.id, sessionMs));
      res.writeHead(303, {
        ...SECURITY,
        Location: '/',
        'Set-Cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(sessionMs / 1000)}${secureCookie(req) ? '; Secure' : ''}`,
      });
      res.end();
      return;
    }

    const who = await db(() => authenticate(req));
    if (!who) {
      if (path === '/' && (method === 'GET' || method === 'HEAD')) return html(res, 401, (n) => loginPage(n, null));
      throw new HttpError(401, 'sign in first: a valid annotator token is needed', { 'WWW-Authenticate': 'Bearer' });
    }

    switch (path) {
      case '/':
        allow(method, ['GET', 'HEAD']);
        return html(res, 200, (n) => labelPage(n, who.name));
      case '/logout':
        allow(method, ['POST']);
        await readBody(req);
        {
          const session = cookieOf(req);
          if (session) await write(() => store.endSession(session));
        }
        res.writeHead(303, { ...SECURITY, Location: '/', 'Set-Cookie': `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
        res.end();
        return;
      case '/api/next': {
        allow(method, ['GET']);
        sampler.check();
        const round = sampler.round;
        const item = round === null ? null : await write(() => store.nextItem(who.id, round, Date.now(), leaseMs));
        sampler.nudge();
        const progress = await db(() => store.progress(who.id, round, Date.now(), leaseMs));
        return json(res, 200, { annotator: who.name, item, progress, sampler: sampler.status() });
      }
      case '/api/label': {
        allow(method, ['POST']);
        const body = await readJson(req, ['assignmentId', 'choice', 'reason']);
        const assignmentId = body.assignmentId;
        if (typeof assignmentId !== 'number' || !Number.isSafeInteger(assignmentId) || assignmentId < 1)
          throw new HttpError(400, `field "assignmentId": expected a positive integer, got ${JSON.stringify(assignmentId) ?? 'nothing'}`);
        const choice = body.choice;
        if (typeof choice !== 'string' || !(SIDES as readonly string[]).includes(choice))
          throw new HttpError(400, `field "choice": expected one of ${SIDES.join(', ')}, got ${JSON.stringify(choice) ?? 'nothing'}`);
        const reason = checkReason(body.reason);
        // the label and the next assignment in one transaction (one sync to disk); the label stands even if the
        // next pair cannot be had, and once committed the answer is 200
        const round = sampler.round;
        const { labelId, next, nextError } = await write(() => store.labelThenNext(who.id, assignmentId, choice as Side, reason, Date.now(), round, leaseMs));
        if (nextError) log(`label ${labelId} stored; its next pair failed: ${nextError.message}`);
        let progress = null;
        try {
          progress = await db(() => store.progress(who.id, round, Date.now(), leaseMs));
          sampler.nudge();
        } catch (e) {
          log(`label ${labelId} stored; its progress failed: ${(e as Error).message}`);
        }
        return json(res, 200, { labelId, next, progress, sampler: sampler.status() });
      }
      case '/api/undo': {
        allow(method, ['POST']);
        await readJson(req, []);
        const round = sampler.round;
        const u = round === null ? null : await write(() => store.undo(who.id, round, Date.now()));
        if (!u) throw new HttpError(409, 'nothing to undo: you have no label in this round');
        const progress = await db(() => store.progress(who.id, round, Date.now(), leaseMs));
        return json(res, 200, { undone: u.labelId, item: u.item, side: u.side, reason: u.reason, progress, sampler: sampler.status() });
      }
      case '/api/labels':
        allow(method, ['GET']);
        return json(res, 200, { annotator: who.name, labels: await db(() => store.labelsOf(who.id)) });
      default:
        throw new HttpError(404, `no such page: ${path}`);
    }
  };

  function authenticate(req: IncomingMessage): Annotator | null {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m ? store.annotatorByToken(m[1]!) : null;
    }
    const session = cookieOf(req);
    return session ? store.annotatorBySession(session) : null;
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError || e instanceof StoreError ? e.status : e instanceof BusyError ? 503 : 500;
      const message = e instanceof Error ? e.message : String(e);
      if (status === 500) log(`error answering ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? message) : message}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const extra = e instanceof HttpError ? e.headers : e instanceof BusyError ? { 'Retry-After': '2' } : {};
      // a refused body may still be arriving: close the connection rather than read it
      if (status === 413) extra.Connection = 'close';
      json(res, status, { error: status === 500 ? 'internal error (see the server log)' : message }, extra);
    });
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;

  answerClientErrors(server, (message) => ({ error: message }), '16 KiB');

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    lock?.release();
    store.setBusyTimeout(10_000);
    throw e;
  }
  port = (server.address() as AddressInfo).port;
  lock?.setPort(port);
  sampler.start();

  return {
    url: `http://127.0.0.1:${port}/`,
    address: (server.address() as AddressInfo).address,
    port,
    sampler,
    commits: commits.stats,
    async close() {
      try {
        await sampler.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      } finally {
        lock?.release();
        store.setBusyTimeout(10_000);
      }
    },
  };
}

const SECURITY: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) throw new HttpError(405, `method ${method} not allowed here (${methods.join(', ')})`, { Allow: methods.join(', ') });
}

function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY, ...extra, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function html(res: ServerResponse, status: number, page: (nonce: string) => string): void {
  const nonce = randomBytes(18).toString('base64');
  const text = page(nonce);
  res.writeHead(status, {
    ...SECURITY,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Content-Security-Policy': pagePolicy(nonce),
  });
  res.end(text);
}

/**
 * The request body, refused with 413 past MAX_BODY bytes (announced or sent). A refused body of up to DRAIN_CAP
 * bytes is read to its end and dropped before the answer, so the client surely reads the reason; a larger one is
 * answered at once and its connection closed.
 */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const announced = Number(req.headers['content-length'] ?? 0);
    const refuse = () => new HttpError(413, `request body${announced ? ` of ${announced} bytes` : ''} is over the limit of ${MAX_BODY} bytes`);
    if (announced > DRAIN_CAP) return reject(refuse());
    const chunks: Buffer[] = [];
    let n = 0;
    let settled = false;
    const done = (e: Error | null) => {
      if (settled) return;
      settled = true;
      if (e) reject(e);
      else resolve(Buffer.concat(chunks));
    };
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > DRAIN_CAP) done(refuse());
      else if (n <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => done(n > MAX_BODY ? refuse() : null));
    req.on('error', (e) => done(e));
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A JSON object body with only the `fields` named (any missing ones are undefined). */
async function readJson(req: IncomingMessage, fields: string[]): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  const body = await readBody(req);
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, `expected Content-Type application/json, got ${JSON.stringify(type || null)}`);
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new HttpError(400, 'the body is not valid UTF-8');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `the body is not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'the body must be a JSON object');
  for (const k of Object.keys(v)) if (!fields.includes(k)) throw new HttpError(400, `unknown field ${JSON.stringify(k)}${fields.length ? ` (expected ${fields.join(', ')})` : ''}`);
  return v as Record<string, unknown>;
}

function checkReason(r: unknown): string | null {
  if (r === undefined || r === null) return null;
  if (typeof r !== 'string') throw new HttpError(400, `field "reason": expected a string or null, got ${typeof r}`);
  const t = r.trim();
  if (t.length > MAX_REASON) throw new HttpError(400, `field "reason": at most ${MAX_REASON} characters, got ${t.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(t)) throw new HttpError(400, 'field "reason": control characters are not allowed');
  // a lone surrogate (JSON allows "\ud800") has no UTF-8 form: SQLite would store invalid text
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(t)) throw new HttpError(400, 'field "reason": contains a lone surrogate (not valid Unicode text)');
  return t === '' ? null : t;
}
