// The sampling thread of the labeling server: loads the policy checkpoint(s) with their tokenizers and answers
// one prompt at a time with two responses (two samples of one policy, or one from each of two policies). The
// engine is native and synchronous, so this runs in a worker_threads Worker, never on the server's thread.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { loadPretrained } from '../io/pretrained.js';
import { generate, type FinishReason } from '../models/generate.js';
import type { Transformer } from '../models/transformer.js';
import { Tokenizer } from '../tokenizer/index.js';
import type { SampleSettings } from './db.js';
import type { PromptValue } from './inputs.js';

export interface SamplerInit {
  alignkitSampler: true;
  /** one policy directory (two samples of it) or two (one sample of each, a then b) */
  policies: string[];
  settings: SampleSettings;
}

export type ToWorker = { type: 'sample'; promptId: number; prompt: PromptValue };

export type FromWorker =
  | { type: 'ready'; policies: { dir: string; modelVocab: number; tokenizerVocab: number; maxPositions: number }[] }
  | { type: 'fatal'; error: string }
  | { type: 'pair'; promptId: number; responseA: string; responseB: string; meta: { tokens: [number, number]; finish: [FinishReason, FinishReason] } }
  | { type: 'failed'; promptId: number; error: string };

interface Policy {
  dir: string;
  model: Transformer;
  tok: Tokenizer;
  eos: number[];
}

/**
 * Loads a policy directory. Its tokenizer must not hold more tokens than the model has embedding rows (a prompt
 * could encode to an id the model cannot read); a model with more rows than tokens (padded embeddings) is fine:
 * ids without a token decode to nothing, as in the tokenizers library.
 */
function loadPolicy(dir: string): Policy {
  if (!existsSync(join(dir, 'tokenizer.json'))) throw new Error(`policy ${dir}: no tokenizer.json (responses are decoded with the policy's own tokenizer)`);
  const { model, generation } = loadPretrained(dir);
  // sampling is inference: no adapter dropout
  model.training = false;
  const tok = Tokenizer.fromPretrained(dir);
  const V = model.config.vocabSize;
  if (tok.vocabSize > V) throw new Error(`policy ${dir}: the tokenizer has ${tok.vocabSize} tokens but the model only ${V} embedding rows, so prompts could encode to ids the model cannot read`);
  const cfgEos = model.config.eosTokenId;
  const candidates = [tok.eosTokenId, ...(generation?.eosTokenIds ?? []), ...(Array.isArray(cfgEos) ? cfgEos : [cfgEos])];
  const eos = [...new Set(candidates.filter((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < V))];
  return { dir, model, tok, eos };
}

function promptIds(p: Policy, prompt: PromptValue): number[] {
  const ids =
    typeof prompt === 'string'
      ? p.tok.encode(prompt)
      : p.tok.applyChatTemplate(
          prompt.map((m) => ({ ...m })),
          { addGenerationPrompt: true, tokenize: true },
        );
  if (ids.length === 0) {
    const bos = p.tok.bosTokenId ?? p.eos[0];
    if (bos === undefined) throw new Error('the prompt encodes to no tokens and the tokenizer has no BOS token to start from');
    return [bos];
  }
  return ids;
}

function sample(policies: Policy[], prompt: PromptValue, settings: SampleSettings, seed: number): { texts: [string, string]; tokens: [number, number]; finish: [FinishReason, FinishReason] } {
  const run = (p: Policy, rows: number, s: number) => {
    const ids = promptIds(p, prompt);
    const room = p.model.config.maxPositions - ids.length;
    if (room < 1) throw new Error(`the prompt is ${ids.length} tokens, the model ${p.dir} reads at most ${p.model.config.maxPositions}`);
    const r = generate(
      p.model,
      Array.from({ length: rows }, () => ids),
      {
        maxNewTokens: Math.min(settings.maxNewTokens, room),
        temperature: settings.temperature,
        topP: settings.topP,
        topK: settings.topK,
        eosTokenId: p.eos,
        seed: s,
      },
    );
    return r.tokens.map((t, i) => {
      const body = r.finishReason[i] === 'eos' ? t.slice(0, -1) : t;
      return { text: p.tok.decode(body, { skipSpecialTokens: true }), n: t.length, finish: r.finishReason[i]! };
    });
  };
  const [a, b] = policies.length === 1 ? run(policies[0]!, 2, seed) : [run(policies[0]!, 1, seed)[0]!, run(policies[1]!, 1, (seed ^ 0x5bd1e995) >>> 0)[0]!];
  return { texts: [a!.text, b!.text], tokens: [a!.n, b!.n], finish: [a!.finish, b!.finish] };
}

/** The seed of one prompt's samples: the round's seed and the prompt id (a restart draws the same pair). */
export function promptSeed(roundSeed: number, promptId: number): number {
  return (Math.imul(roundSeed >>> 0, 1000003) + promptId) >>> 0;
}

const init = workerData as SamplerInit | undefined;
if (parentPort && init?.alignkitSampler) {
  const port = parentPort;
  const send = (m: FromWorker) => port.postMessage(m);
  let policies: Policy[] = [];
  try {
    policies = init.policies.map(loadPolicy);
    send({
      type: 'ready',
      policies: policies.map((p) => ({ dir: p.dir, modelVocab: p.model.config.vocabSize, tokenizerVocab: p.tok.vocabSize, maxPositions: p.model.config.maxPositions })),
    });
  } catch (e) {
    send({ type: 'fatal', error: (e as Error).message });
  }
  port.on('message', (m: ToWorker) => {
    if (m.type !== 'sample' || policies.length === 0) return;
    try {
      const s = sample(policies, m.prompt, init.settings, promptSeed(init.settings.seed, m.promptId));
      send({ type: 'pair', promptId: m.promptId, responseA: s.texts[0], responseB: s.texts[1], meta: { tokens: s.tokens, finish: s.finish } });
    } catch (e) {
      send({ type: 'failed', promptId: m.promptId, error: (e as Error).message });
    }
  });
}
