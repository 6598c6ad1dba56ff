// llama.cpp for the GGUF cross-checks, through node-llama-cpp (CPU prebuilt binaries; never builds or downloads).
// node-llama-cpp is not a dependency (its binaries are ~700 MB): `npm run setup:llama-cpp` installs the pinned
// version without saving it, as .ci/run does. Locally, when it is absent, the llama.cpp tests are skipped with the
// reason printed; with ALIGNKIT_REQUIRE_LLAMA_CPP=1 (set by .ci/run) they fail instead, so CI cannot pass without
// the cross-check. Only the few calls the tests make are typed here, so the repository type-checks without it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test, after } from 'node:test';

/** The version `npm run setup:llama-cpp` installs (its bundled llama.cpp produced the recorded continuations). */
export const LLAMA_CPP_PACKAGE = 'node-llama-cpp';
export const REQUIRED = process.env.ALIGNKIT_REQUIRE_LLAMA_CPP === '1';

export interface LlamaTokens {
  bos: number | null;
  eos: number | null;
  shouldPrependBosToken: boolean;
}

export interface LlamaSequence {
  evaluate(tokens: number[], o: { temperature: number }): AsyncIterable<number>;
  controlledEvaluate(input: [number, { generateNext: { probabilities: true } }][]): Promise<({ next?: { probabilities?: Map<number, number> } } | undefined)[]>;
}

export interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}

export interface LlamaModel {
  createContext(o: Record<string, unknown>): Promise<LlamaContext>;
  tokenize(text: string, specialTokens?: boolean): readonly number[];
  detokenize(tokens: readonly number[]): string;
  readonly tokens: LlamaTokens;
  dispose(): Promise<void>;
}

export interface Llama {
  loadModel(o: { modelPath: string }): Promise<LlamaModel>;
  dispose(): Promise<void>;
}

interface LlamaCppModule {
  getLlama(o: Record<string, unknown>): Promise<Llama>;
}

/** The version in the package.json above the resolved entry point (the package does not export its package.json). */
function installedVersion(entry: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (!existsSync(pj)) continue;
    const j = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string };
    if (j.name === LLAMA_CPP_PACKAGE) return String(j.version);
  }
  return 'unknown';
}

/** Why the llama.cpp tests cannot run here (null when node-llama-cpp loads), and its version. */
async function probe(): Promise<{ mod: LlamaCppModule | null; version: string | null; reason: string | null }> {
  try {
    const name: string = LLAMA_CPP_PACKAGE; // a variable: TypeScript must not resolve the optional module
    const mod = (await import(name)) as LlamaCppModule;
    return { mod, version: installedVersion(createRequire(import.meta.url).resolve(name)), reason: null };
  } catch (e) {
    return { mod: null, version: null, reason: `${LLAMA_CPP_PACKAGE} cannot be imported (${(e as Error).message.split('\n')[0]}); \`npm run setup:llama-cpp\` installs it` };
  }
}

const found = await probe();
if (found.reason !== null) {
  const what = REQUIRED ? 'FAIL (ALIGNKIT_REQUIRE_LLAMA_CPP=1)' : 'skipped';
  console.log(`llama.cpp cross-checks ${what}: ${found.reason}`);
} else {
  console.log(`llama.cpp cross-checks with ${LLAMA_CPP_PACKAGE} ${found.version}`);
}

/** Options for node:test: skip (with the reason) when node-llama-cpp is absent, unless CI requires it. */
export const llamaTestOptions: { skip: string | false } = { skip: found.reason !== null && !REQUIRED ? found.reason : false };

let llama: Promise<Llama> | null = null;

/** The shared llama.cpp instance (CPU only, errors logged only); throws the reason when node-llama-cpp is absent. */
export function getLlama(): Promise<Llama> {
  if (found.mod === null) throw new Error(`llama.cpp is required here but ${found.reason}`);
  llama ??= found.mod.getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, logLevel: 'error' });
  return llama;
}

after(async () => {
  if (llama !== null) await (await llama).dispose();
});

export async function withLlamaModel<T>(path: string, fn: (m: LlamaModel) => Promise<T>): Promise<T> {
  const model = await (await getLlama()).loadModel({ modelPath: path });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}

/** Context options for a faithful comparison: f32 KV cache, no flash attention, one thread (the machine is shared). */
const CTX = { contextSize: 64, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } as const;

/** llama.cpp's greedy continuation of `prompt` (token ids, no BOS added). */
export async function llamaGreedy(model: LlamaModel, prompt: number[], n: number): Promise<number[]> {
  const ctx = await model.createContext(CTX);
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt, { temperature: 0 })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

/** llama.cpp's next-token log-probabilities after each prefix of `ids` (teacher forcing); −∞ where it gives none. */
export async function llamaLogProbs(model: LlamaModel, ids: number[], V: number): Promise<Float64Array[]> {
  const ctx = await model.createContext(CTX);
  try {
    const res = await ctx.getSequence().controlledEvaluate(ids.map((t) => [t, { generateNext: { probabilities: true } }]));
    return ids.map((_, i) => {
      const p = res[i]?.next?.probabilities;
      if (!p) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
      const lp = new Float64Array(V).fill(-Infinity);
      for (const [tok, prob] of p) lp[tok] = Math.log(prob);
      return lp;
    });
  } finally {
    await ctx.dispose();
  }
}

/** A test that runs only with llama.cpp (skipped with the printed reason locally, failing in CI when absent). */
export function llamaTest(name: string, fn: () => Promise<void>): void {
  test(name, llamaTestOptions, fn);
}
