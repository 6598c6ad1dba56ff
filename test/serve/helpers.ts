// Test models for the server: the tiny Hugging Face GPT-2 and Llama fixtures with a small byte-level BPE tokenizer
// (with and without a chat template), and a LoRA adapter of the GPT-2 one; a started server and an openai client.
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { packageRoot } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import { saveAdapter } from '../../src/io/peft.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { type ServeHandle, type ServeOptions, startServer } from '../../src/serve/server.js';
import { type Tokenizer, trainByteLevelBPE } from '../../src/tokenizer/index.js';

export const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');
export const CHAT_TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

let tokCache: Tokenizer | null = null;
function tokenizer(): Tokenizer {
  if (tokCache) return tokCache;
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'hello', 'world', 'model', 'answer', 'question', 'good', 'bad', 'yes', 'no'];
  const rng = new Random(5);
  const texts = Array.from({ length: 300 }, () => Array.from({ length: 10 }, () => words[rng.int(words.length)]).join(' ') + '.');
  tokCache = trainByteLevelBPE(texts, { vocabSize: 400, specialTokens: ['<|endoftext|>'], config: { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', chat_template: CHAT_TEMPLATE } });
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
