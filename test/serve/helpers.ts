// Test models for the server: the tiny Hugging Face GPT-2 and Llama fixtures with a small byte-level BPE tokenizer
// (with and without a chat template), and a LoRA adapter of the GPT-2 one; a started server and an openai client.
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { packageRoot } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import { saveAdapter } from '../../src/io/peft.js';
import { parseConfig } from '../../src/io/config.js';
import { loadPretrained, savePretrained } from '../../src/io/pretrained.js';
import { Transformer } from '../../src/models/transformer.js';
import { type ServeHandle, type ServeOptions, startServer } from '../../src/serve/server.js';
import { type Tokenizer, trainByteLevelBPE } from '../../src/tokenizer/index.js';

export const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');
const CHAT_TEMPLATE = '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';

let tokCache: Tokenizer | null = null;
/** A byte-level BPE tokenizer of exactly the fixtures' 1000 ids (so every id the model emits decodes to text). */
function tokenizer(): Tokenizer {
  if (tokCache) return tokCache;
  const rng = new Random(5);
  const syllables = ['ba', 'ce', 'di', 'fo', 'gu', 'ha', 'ke', 'li', 'mo', 'nu', 'pa', 're', 'si', 'to', 'vu', 'wa', 'xe', 'yi', 'zo', 'qu'];
  const texts = ['hello world, the quick brown fox jumps over the lazy dog. Is it good? Yes or no.'];
  for (let i = 0; i < 300; i++) {
    const words = Array.from({ length: 12 }, () => Array.from({ length: 1 + rng.int(3) }, () => syllables[rng.int(syllables.length)]).join(''));
    texts.push(words.join(' ') + '.');
  }
  tokCache = trainByteLevelBPE(texts, {
    vocabSize: 1000,
    minFrequency: 1,
    specialTokens: ['<|endoftext|>'],
    config: { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', chat_template: CHAT_TEMPLATE },
  });
  if (tokCache.vocabSize !== 1000) throw new Error(`test tokenizer has ${tokCache.vocabSize} tokens, expected 1000`);
  return tokCache;
}

export interface TestModels {
  gpt2: string;
  llama: string;
  /** tiny GPT-2 whose tokenizer has no chat template */
  plain: string;
  /** a LoRA adapter folder on `gpt2` */
  adapter: string;
}

export function makeModels(root: string): TestModels {
  const m: TestModels = { gpt2: join(root, 'gpt2'), llama: join(root, 'llama'), plain: join(root, 'plain'), adapter: join(root, 'adapter') };
  const tok = tokenizer();
  cpSync(join(FIX, 'tiny-gpt2'), m.gpt2, { recursive: true });
  tok.save(m.gpt2);
  cpSync(join(FIX, 'tiny-llama'), m.llama, { recursive: true });
  tok.save(m.llama);
  cpSync(join(FIX, 'tiny-gpt2'), m.plain, { recursive: true });
  const plainTok = trainByteLevelBPE(['the quick brown fox jumps over the lazy dog'], { vocabSize: 300, specialTokens: ['<|endoftext|>'], config: { eos_token: '<|endoftext|>' } });
  plainTok.save(m.plain);
  // an adapter with non-zero B, so that it changes the output
  const p = loadPretrained(m.gpt2);
  const cfg = { r: 4, alpha: 8, targetModules: ['c_attn', 'c_fc'] };
  const ads = p.model.addLora(cfg, 3);
  const rng = new Random(9);
  for (const a of ads) for (let i = 0; i < a.B.size; i++) a.B.data[i] = rng.normal() * 0.5;
  mkdirSync(m.adapter, { recursive: true });
  saveAdapter(m.adapter, p.model, cfg, m.gpt2);
  p.model.dispose();
  return m;
}

export async function serve(models: TestModels, o: Partial<ServeOptions> = {}): Promise<{ server: ServeHandle; client: OpenAI }> {
  const server = await startServer({ models: [{ name: 'gpt2', dir: models.gpt2 }], port: 0, ...o });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: o.apiKey ?? 'none', maxRetries: 0 });
  return { server, client };
}

/** A GPT-2 with random weights, wider and with a longer context than the fixture (a few ms per token). */
export function makeSlowModel(dir: string, layers = 4): string {
  const raw = JSON.parse(readFileSync(join(FIX, 'tiny-gpt2', 'config.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(raw, { n_embd: 192, n_layer: layers, n_head: 4, n_positions: 1024 });
  const hfConfig = parseConfig(raw);
  savePretrained(dir, { model: Transformer.random(hfConfig.model, 3), hfConfig, generation: null, score: null });
  tokenizer().save(dir);
  return dir;
}

/** Reads a server-sent event stream to its end: the data lines, in order. */
export async function readEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => b.slice('data: '.length));
}
