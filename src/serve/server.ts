// The OpenAI-compatible HTTP server of `alignkit serve` (node:http): GET /health, GET /v1/models[/NAME], POST
// /v1/completions and /v1/chat/completions. Safe by default: it binds 127.0.0.1 and then answers only to Host
// names of this machine (a web page cannot reach it through DNS rebinding); any other address needs an API key,
// checked (Bearer, constant time) on every route but /health. Bodies are capped and checked field by field; every
// error is OpenAI's JSON error shape, never a stack trace. close() drains: new requests get 503, running ones may
// finish within the grace period, then end with what they have.
import { answerClientErrors } from '../io/http-client-errors.js';
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Engine } from './engine.js';
import { type ServedModel, servedModels } from './models.js';
import { type GenerationLimits, handleGeneration } from './openai.js';
import type { ModelSpec } from './protocol.js';
import { ApiError } from './schema.js';

export interface ServeOptions {
  models: ModelSpec[];
  host?: string;
  /** 0: any free port */
  port?: number;
  /** required when host is not a loopback address */
  apiKey?: string | null;
  /** sequences decoded together per base model (default 32) */
  maxBatch?: number;
  /** requests waiting for a place in the batch before 429 (default 256) */
  maxQueue?: number;
  /** new tokens one request may ask for (default 2048) */
  maxTokens?: number;
  /** a request ends after this long, ms (default 10 minutes) */
  requestTimeoutMs?: number;
  /** largest request body, bytes (default 1 MiB) */
  maxBody?: number;
  /** choices per request at most (default 16) */
  maxN?: number;
  /** more Host names the loopback server answers to (a reverse proxy, an SSH tunnel) */
  allowHosts?: readonly string[];
  log?: (line: string) => void;
}

export interface ServeHandle {
  url: string;
  port: number;
  models: ServedModel[];
  engine: Engine;
  /** stops accepting, lets running requests finish for up to graceMs (default 10 s), then ends them and stops */
  close(graceMs?: number): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const SECURITY = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY, ...extra, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.status, { error: { message: e.message, type: e.type, param: e.param, code: e.code } }, e.headers);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The JSON body, refused past maxBody bytes (announced or sent): 413, and the connection is closed. */
function readJson(req: IncomingMessage, maxBody: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const type = String(req.headers['content-type'] ?? '');
    if (type && !/^application\/json\s*(;|$)/i.test(type)) return reject(new ApiError(415, `expected Content-Type application/json, got ${JSON.stringify(type)}`));
    const announced = Number(req.headers['content-length'] ?? 0);
    const tooBig = () =>
      new ApiError(413, `the request body${announced ? ` of ${announced} bytes` : ''} is over the limit of ${maxBody} bytes (--max-body-kib)`, 'invalid_request_error', null, null, {
        Connection: 'close',
      });
    if (announced > maxBody) return reject(tooBig());
    const chunks: Buffer[] = [];
    let n = 0,
      settled = false;
    req.on('data', (c: Buffer) => {
      if (settled) return;
      n += c.length;
      if (n > maxBody) {
        settled = true;
        reject(tooBig());
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      let text: string;
      try {
        text = UTF8.decode(Buffer.concat(chunks));
      } catch {
        return reject(new ApiError(400, 'the body is not valid UTF-8'));
      }
      if (text.trim() === '') return reject(new ApiError(400, 'the body is empty; expected a JSON object'));
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ApiError(400, `the body is not valid JSON (${(e as Error).message})`));
      }
    });
    req.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
  });
}

function keyMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest(),
    b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export async function startServer(o: ServeOptions): Promise<ServeHandle> {
  const host = o.host ?? '127.0.0.1';
  const apiKey = o.apiKey ?? null;
  if (!isLoopback(host) && !apiKey) throw new Error(`binding ${host} (not this machine only) needs an API key (--api-key): anyone who can reach the port could use the model`);
  if (!o.models.length) throw new Error('no model to serve (--model NAME=DIR)');
  const log = o.log ?? (() => {});
  const maxBatch = o.maxBatch ?? 32;
  const limits: GenerationLimits = { maxTokens: o.maxTokens ?? 2048, maxQueue: o.maxQueue ?? 256, requestTimeoutMs: o.requestTimeoutMs ?? 600_000, maxN: Math.min(o.maxN ?? 16, maxBatch) };
  const maxBody = o.maxBody ?? 1024 * 1024;
  const extraHosts = (o.allowHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean);

  const engine = await Engine.start({ models: o.models, maxBatch });
  let served: ServedModel[];
  try {
    served = servedModels(engine.models);
  } catch (e) {
    await engine.close();
    throw e;
  }
  const byName = new Map(served.map((m) => [m.name, m]));
  const running = new Set<() => void>();
  let draining = false;
  let port = 0;

  const hostAllowed = (h: string | undefined): boolean => {
    if (!isLoopback(host)) return true; // reachable by address: the API key is the gate
    if (!h) return false;
    const v = h.toLowerCase();
    if ([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(v)) return true;
    return extraHosts.some((a) => a === v || (!/:\d+$/.test(a) && v.replace(/:\d+$/, '') === a));
  };

  const modelCard = (m: ServedModel) => ({
    id: m.name,
    object: 'model',
    created: m.created,
    owned_by: 'alignkit',
    root: m.info.dir,
    parent: m.info.adapter ? m.info.baseDir : null,
    max_model_len: m.info.contextLength,
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req.headers.host))
      throw new ApiError(421, `unexpected Host header ${JSON.stringify(req.headers.host ?? null)} (the server answers to 127.0.0.1:${port} and localhost:${port}; see --allow-host)`);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const allow = (methods: string[]) => {
      if (!methods.includes(method)) throw new ApiError(405, `method ${method} is not allowed on ${path} (${methods.join(', ')})`, 'invalid_request_error', null, null, { Allow: methods.join(', ') });
    };
    if (path === '/health') {
      allow(['GET', 'HEAD']);
      const down = engine.failure ?? (draining ? 'shutting down' : null);
      return sendJson(res, down ? 503 : 200, down ? { status: 'unavailable', reason: down } : { status: 'ok', active: engine.load.active, waiting: engine.queued });
    }
    if (apiKey) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m || !keyMatches(m[1]!, apiKey))
        throw new ApiError(401, m ? 'the API key is not valid' : 'an API key is needed: send Authorization: Bearer <key>', 'authentication_error', null, 'invalid_api_key', {
          'WWW-Authenticate': 'Bearer',
        });
    }
    if (path === '/v1/models') {
      allow(['GET']);
      return sendJson(res, 200, { object: 'list', data: served.map(modelCard) });
    }
    if (path.startsWith('/v1/models/')) {
      allow(['GET']);
      const m = byName.get(decodeURIComponent(path.slice('/v1/models/'.length)));
      if (!m) throw new ApiError(404, `the model ${JSON.stringify(path.slice('/v1/models/'.length))} does not exist`, 'invalid_request_error', 'model', 'model_not_found');
      return sendJson(res, 200, modelCard(m));
    }
    const kind = path === '/v1/chat/completions' ? 'chat' : path === '/v1/completions' ? 'completion' : null;
    if (!kind) throw new ApiError(404, `no such route: ${method} ${path} (this server has /v1/chat/completions, /v1/completions, /v1/models, /health)`, 'invalid_request_error', null, 'not_found');
    allow(['POST']);
    const body = await readJson(req, maxBody);
    if (draining) throw new ApiError(503, 'the server is shutting down', 'server_error', null, null, { 'Retry-After': '5' });
    await handleGeneration(
      kind,
      body,
      {
        engine,
        models: byName,
        limits,
        fail: sendError,
        track: (abort) => {
          running.add(abort);
          return () => running.delete(abort);
        },
      },
      res,
    );
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, 'internal error (see the server log)', 'server_error');
      if (!(e instanceof ApiError)) log(`error answering ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, err);
    });
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  answerClientErrors(server, (message) => ({ error: { message, type: 'invalid_request_error', param: null, code: null } }));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 8000, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await engine.close();
    throw e;
  }
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shown}:${port}`,
    port,
    models: served,
    engine,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        draining = true;
        const stopped = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const deadline = Date.now() + graceMs;
        while (running.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        for (const abort of [...running]) abort();
        // the ended responses flush; then no connection is left open
        await new Promise((r) => setTimeout(r, 20));
        server.closeAllConnections();
        await stopped;
        await engine.close();
      })();
      return closing;
    },
  };
}
