// Helpers of the labeling tests: temporary folders, JSONL files, a test policy (tiny-gpt2 with a trained
// 1000-token tokenizer), an HTTP client, the CLI server as a child process, and Debian's chromium.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/io/config.js';
import { savePretrained } from '../../src/io/pretrained.js';
import { Transformer } from '../../src/models/transformer.js';
import { trainByteLevelBPE } from '../../src/tokenizer/index.js';

import { packageRoot } from '../../src/engine/package-root.js';

export function hfFixture(name: string): string {
  return join(packageRoot(), 'test', 'fixtures', 'hf-fixtures', name);
}

const made: string[] = [];
/** A fresh temporary folder, removed by cleanTmp(). */
export function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'alignkit-label-'));
  made.push(d);
  return d;
}
export function cleanTmp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function writeJsonl(path: string, rows: unknown[]): string {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

/**
 * A policy folder: tiny-gpt2's weights (1000 ids, 64 positions) with a byte-level BPE tokenizer trained here to
 * exactly 1000 tokens, so every prompt id is one the model reads and every sampled id decodes to text (the
 * shared tok-bytelevel tokenizer has 2000 tokens, more than the model's embedding rows). It carries a small chat
 * template for conversational prompts.
 */
export function makePolicy(dir: string, weights = 'tiny-gpt2'): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json']) {
    const src = join(hfFixture(weights), f);
    if (existsSync(src)) copyFileSync(src, join(dir, f));
  }
  policyTokenizer().save(dir);
  return dir;
}

/**
 * A slower policy (random GPT-2, width 128, 4 layers, 512 positions, the same 1000-token tokenizer): one prompt's
 * two 480-token samples take a few hundred milliseconds, long enough to see whether they block the server.
 */
export function makeSlowPolicy(dir: string): string {
  const raw = JSON.parse(readFileSync(join(hfFixture('tiny-gpt2'), 'config.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(raw, { n_embd: 128, n_layer: 4, n_head: 4, n_positions: 512 });
  const hfConfig = parseConfig(raw);
  savePretrained(dir, { model: Transformer.random(hfConfig.model, 3), hfConfig, generation: null, score: null });
  policyTokenizer().save(dir);
  return dir;
}

let tokCache: ReturnType<typeof trainByteLevelBPE> | null = null;
function policyTokenizer() {
  if (tokCache) return tokCache;
  let s = 12345;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'to', 'vi', 'be', 'do', 'fu', 'ga', 'hi', 'jo', 'pe', 'qu', 'ze', 'wa', 'xi', 'yo'];
  const texts: string[] = ['What is the capital of France? Tell me a story about a cat. Explain why the sky is blue.'];
  for (let i = 0; i < 300; i++) {
    const words: string[] = [];
    for (let j = 0; j < 12; j++) {
      let w = '';
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) w += syl[Math.floor(rnd() * syl.length)];
      words.push(w);
    }
    texts.push(words.join(' ') + '.');
  }
  tokCache = trainByteLevelBPE(texts, {
    vocabSize: 1000,
    minFrequency: 1,
    specialTokens: ['<|endoftext|>'],
    config: {
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      chat_template: '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
    },
  });
  if (tokCache.vocabSize !== 1000) throw new Error(`test tokenizer has ${tokCache.vocabSize} tokens, expected 1000`);
  return tokCache;
}

interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** One HTTP request; JSON bodies are parsed into `body`. */
export async function request(url: string, init: RequestInit & { token?: string; json?: unknown } = {}): Promise<Reply> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('Authorization', `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(url, { ...init, headers, body, redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = null;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export const CLI = () => join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

interface ChildServer {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
  /** resolves with the exit code or signal */
  exited: Promise<number | string>;
}

/** Starts `alignkit label serve ARGS --port 0` in a child process and waits for its address. */
export function serveChild(args: string[], timeoutMs = 30_000): Promise<ChildServer> {
  const proc = spawn(process.execPath, [CLI(), 'label', 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '',
    err = '';
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the label server did not start within ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1]!, stderr: () => err, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the label server exited (${code}) before listening; stderr: ${err}`));
    });
  });
}

const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Fails (never skips) when Debian's chromium is missing: CI installs it (.ci/run). */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does) to run the browser tests`);
  return CHROMIUM;
}
