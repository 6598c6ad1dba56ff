// `alignkit bench serve`: aggregate generated tokens/s of `alignkit serve` for 1, 8 and 32 concurrent clients
// (streaming completions over HTTP, the same 16-token prompt ids per client, 128 greedy new tokens each) on a
// GPT-2-124M-shaped model with random weights, next to llama.cpp (node-llama-cpp, one context with a sequence
// per client, its batched decoding) on the same model exported to GGUF f32 and f16, in the same run; and
// time-to-first-token p50/p99 at 32 clients. node-llama-cpp is optional (`npm run setup:llama-cpp`): without it
// the reference columns are empty and the note says why.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { core } from '../engine/native.js';
import { Random } from '../engine/random.js';
import { parseConfig } from '../io/config.js';
import { exportGguf } from '../io/gguf-export.js';
import { savePretrained } from '../io/pretrained.js';
import { Transformer } from '../models/transformer.js';
import { startServer } from '../serve/server.js';
import { trainByteLevelBPE } from '../tokenizer/index.js';
import { type BenchRow, row } from './report.js';

interface ServeBenchOptions {
  json: boolean;
  quick?: boolean;
  log?: (s: string) => void;
}

const PROMPT = 16,
  NEW = 128;
/** a reference case stops after this long (llama.cpp's f16 kernels can be slow on CPUs without native f16): tokens/s is then over what it made */
const CAP_S = 90;

interface Run {
  tps: number;
  ttft: number[];
  tokens: number;
}

/** p-quantile of xs (nearest rank). */
function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** A GPT-2-124M-shaped folder with random weights and a small tokenizer (no EOS, so every run is 128 tokens). */
function makeModel(dir: string, quick: boolean): void {
  const raw = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: 50257,
    n_embd: 768,
    n_layer: quick ? 4 : 12,
    n_head: 12,
    n_positions: 1024,
    bos_token_id: null,
    eos_token_id: null,
    activation_function: 'gelu_new',
  };
  const hfConfig = parseConfig(raw);
  const model = Transformer.random(hfConfig.model, 1);
  savePretrained(dir, { model, hfConfig, generation: null, score: null });
  model.dispose();
  const texts = Array.from({ length: 50 }, (_, i) => `the quick brown fox ${i} jumps over the lazy dog`);
  trainByteLevelBPE(texts, { vocabSize: 300, specialTokens: [] }).save(dir);
  // every id of the model decodes to text (as with a real tokenizer): the ids past the trained ones are added words
  const path = join(dir, 'tokenizer.json');
  const tj = JSON.parse(readFileSync(path, 'utf8')) as { added_tokens: unknown[]; model: { vocab: Record<string, number> } };
  const n = Object.keys(tj.model.vocab).length;
  for (let id = n; id < 50257; id++) tj.added_tokens.push({ id, content: ` w${id}`, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
  writeFileSync(path, JSON.stringify(tj));
}

function prompts(n: number): number[][] {
  const rng = new Random(4);
  return Array.from({ length: n }, () => Array.from({ length: PROMPT }, () => rng.int(50000)));
}

interface Runner {
  label: string;
  run(clients: number): Promise<Run>;
  close(): Promise<void>;
}

function summarize(rs: { ttft: number; tokens: number }[], seconds: number): Run {
  const tokens = rs.reduce((a, r) => a + r.tokens, 0);
  return { tps: tokens / seconds, ttft: rs.map((r) => r.ttft).filter((t) => t >= 0), tokens };
}

/** alignkit serve over HTTP: each client one streaming completion. */
async function alignkitRunner(dir: string, maxBatch: number): Promise<Runner> {
  const server = await startServer({ models: [{ name: 'gpt2', dir }], port: 0, maxBatch });
  const one = async (ids: number[]): Promise<{ ttft: number; tokens: number }> => {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'gpt2', prompt: ids, max_tokens: NEW, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    });
    if (res.status !== 200) throw new Error(`bench serve: HTTP ${res.status}: ${await res.text()}`);
    let ttft = -1,
      buf = '',
      tokens = 0;
    const dec = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      // the first chunk carrying text is the first token
      if (ttft < 0 && buf.includes('"text":"') && /"text":"[^"]/.test(buf)) ttft = (performance.now() - t0) / 1000;
    }
    for (const ev of buf.split('\n\n')) {
      if (!ev.startsWith('data: {')) continue;
      const j = JSON.parse(ev.slice(6)) as { usage?: { completion_tokens: number } };
      if (j.usage) tokens = j.usage.completion_tokens;
    }
    return { ttft, tokens };
  };
  await one(prompts(1)[0]!); // warm-up
  return {
    label: 'alignkit serve',
    async run(c) {
      const t0 = performance.now();
      const rs = await Promise.all(prompts(c).map(one));
      return summarize(rs, (performance.now() - t0) / 1000);
    },
    close: () => server.close(0),
  };
}

// Only the few node-llama-cpp calls the bench makes (it is not a dependency of the package).
interface LlamaSeq {
  evaluate(tokens: number[], o: { temperature: number }): AsyncGenerator<number>;
}
interface LlamaCtx {
  getSequence(): LlamaSeq;
  dispose(): Promise<void>;
}
interface LlamaModelLike {
  createContext(o: Record<string, unknown>): Promise<LlamaCtx>;
  dispose(): Promise<void>;
}
interface LlamaLike {
  loadModel(o: { modelPath: string }): Promise<LlamaModelLike>;
  dispose(): Promise<void>;
}

async function loadLlamaCpp(): Promise<LlamaLike | string> {
  try {
    const name: string = 'node-llama-cpp';
    const mod = (await import(name)) as { getLlama(o: Record<string, unknown>): Promise<LlamaLike> };
    return await mod.getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, logLevel: 'error' });
  } catch (e) {
    return `node-llama-cpp is not available (${(e as Error).message.split('\n')[0]}); npm run setup:llama-cpp installs it`;
  }
}

/** llama.cpp: one context per run with a sequence per client, every sequence evaluated at once (batched). */
async function llamaRunner(llama: LlamaLike, gguf: string, threads: number, label: string): Promise<Runner> {
  const model = await llama.loadModel({ modelPath: gguf });
  const runOnce = async (c: number, warm: boolean): Promise<Run> => {
    const ctx = await model.createContext({ contextSize: Math.max(1024, c * (PROMPT + NEW + 16)), sequences: c, threads, batchSize: 512 });
    try {
      const start = performance.now();
      const one = async (seq: LlamaSeq, ids: number[]): Promise<{ ttft: number; tokens: number }> => {
        const t0 = performance.now();
        let ttft = -1,
          tokens = 0;
        for await (const _t of seq.evaluate(ids, { temperature: 0 })) {
          if (ttft < 0) ttft = (performance.now() - t0) / 1000;
          if (++tokens >= (warm ? 8 : NEW) || performance.now() - start > CAP_S * 1000) break;
        }
        return { ttft, tokens };
      };
      const seqs = Array.from({ length: c }, () => ctx.getSequence());
      const rs = await Promise.all(prompts(c).map((p, i) => one(seqs[i]!, p)));
      return summarize(rs, (performance.now() - start) / 1000);
    } finally {
      await ctx.dispose();
    }
  };
  await runOnce(1, true); // warm-up
  return { label, run: (c) => runOnce(c, false), close: () => model.dispose() };
}

export async function benchServe(opts: ServeBenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const clients = [1, 8, 32];
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-serve-'));
  const shape = opts.quick ? 'gpt2 L4 d768 (quick)' : 'gpt2-124M (L12 d768 V50257)';
  try {
    log(`bench serve: ${shape}, ${PROMPT}-token prompts, ${NEW} new tokens per client, greedy`);
    makeModel(dir, opts.quick ?? false);
    const threads = core.getThreads();
    const runners: Runner[] = [await alignkitRunner(dir, Math.max(...clients))];
    const llama = await loadLlamaCpp();
    if (typeof llama !== 'string') {
      for (const dtype of ['f32', 'f16'] as const) {
        const gguf = join(dir, `model-${dtype}.gguf`);
        exportGguf({ model: dir, out: gguf, dtype });
        runners.push(await llamaRunner(llama, gguf, threads, `llama.cpp ${dtype}`));
      }
    } else log(`  reference skipped: ${llama}`);
    // the sides alternate, case by case, so that a machine that gets busier or quieter treats them alike; each
    // case runs twice (the reference's f16 once: it is slow) and keeps its better run
    const best = runners.map(() => new Map<number, Run>());
    try {
      for (const c of clients) {
        for (let rep = 0; rep < (opts.quick ? 1 : 2); rep++) {
          for (const [i, r] of runners.entries()) {
            if (rep > 0 && r.label === 'llama.cpp f16') continue;
            const res = await r.run(c);
            const cap = res.tokens < c * NEW ? `, stopped at ${CAP_S} s` : '';
            log(`  ${r.label}, ${c} client${c > 1 ? 's' : ''}: ${res.tps.toFixed(1)} tokens/s (${res.tokens} tokens${cap}; TTFT p50 ${quantile(res.ttft, 0.5).toFixed(3)} s)`);
            if (!best[i]!.has(c) || res.tps > best[i]!.get(c)!.tps) best[i]!.set(c, res);
          }
        }
      }
    } finally {
      for (const r of runners) await r.close();
      if (typeof llama !== 'string') await llama.dispose();
    }
    const ak = best[0]!;
    const ref: Record<'f32' | 'f16', Map<number, Run> | null> = { f32: best[1] ?? null, f16: best[2] ?? null };
    const why = typeof llama === 'string' ? `; reference skipped: ${llama}` : '';
    const rows: BenchRow[] = [];
    for (const c of clients) {
      const a = ak.get(c)!,
        f32 = ref.f32?.get(c) ?? null,
        f16 = ref.f16?.get(c) ?? null;
      rows.push(
        row(
          `serve ${shape}, ${c} concurrent client${c > 1 ? 's' : ''}, ${NEW} new tokens each`,
          a.tps,
          f32?.tps ?? null,
          'tokens/s',
          `llama.cpp f32 (reference column) and f16 ${f16 ? f16.tps.toFixed(1) : '-'}; ${threads} threads${why}`,
        ),
      );
    }
    const a1 = ak.get(1)!.tps,
      a32 = ak.get(32)!;
    const scaling = (m: Map<number, Run> | null) => (m ? m.get(32)!.tps / m.get(1)!.tps : null);
    rows.push(
      row(
        'serve: 32 clients vs 1 client, aggregate tokens/s',
        a32.tps / a1,
        scaling(ref.f32),
        'x',
        `llama.cpp f16 ${scaling(ref.f16)?.toFixed(2) ?? '-'}x; bar: alignkit >= 6x its own single-client figure`,
      ),
    );
    for (const p of [0.5, 0.99]) {
      const name = `serve: time to first token at 32 clients, p${p === 0.5 ? 50 : 99}`;
      rows.push(
        row(name, quantile(a32.ttft, p), ref.f32 ? quantile(ref.f32.get(32)!.ttft, p) : null, 's', `lower is better; llama.cpp f16 ${ref.f16 ? quantile(ref.f16.get(32)!.ttft, p).toFixed(3) : '-'} s`),
      );
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
