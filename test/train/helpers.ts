// Shared pieces of the trainer tests: a word-level tokenizer over a few words, tiny random GPT-2 models as
// Hugging Face directories, synthetic tasks a tiny model can learn, temporary folders.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../../src/engine/random.js';
import { parseConfig } from '../../src/io/config.js';
import { type Pretrained, savePretrained } from '../../src/io/pretrained.js';
import { Transformer } from '../../src/models/transformer.js';
import { Tokenizer } from '../../src/tokenizer/index.js';

const LETTERS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];

/**
 * A word-level tokenizer: <eos> = 0 (also BOS), <pad> = 1, then `words` (split on whitespace, no merges).
 * It adds no BOS; EOS ends completions.
 */
export function wordTokenizer(words: readonly string[] = [...LETTERS, '=', 'x', 'y']): Tokenizer {
  const vocab: Record<string, number> = { '<eos>': 0, '<pad>': 1 };
  words.forEach((w, i) => (vocab[w] = i + 2));
  const special = (id: number, content: string) => ({ id, content, singleWord: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return Tokenizer.fromParts({
    model: { type: 'BPE', vocab, merges: [], unk_token: null },
    addedTokens: [special(0, '<eos>'), special(1, '<pad>')],
    preTokenizer: { type: 'WhitespaceSplit' },
    config: { eos_token: '<eos>', bos_token: '<eos>', pad_token: '<pad>' },
  });
}

/** A tiny GPT-2 (LM head tied to the embedding) as a Pretrained, with a config transformers reads. */
export function tinyGpt2(vocabSize: number, seed: number, o: { hidden?: number; layers?: number; heads?: number; positions?: number } = {}): Pretrained {
  const hfConfig = parseConfig({
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: vocabSize,
    n_embd: o.hidden ?? 32,
    n_layer: o.layers ?? 2,
    n_head: o.heads ?? 4,
    n_positions: o.positions ?? 64,
    bos_token_id: 0,
    eos_token_id: 0,
    pad_token_id: 1,
  });
  return { model: Transformer.random(hfConfig.model, seed), hfConfig, generation: null, score: null };
}

/** Writes a tiny model and the tokenizer as a Hugging Face model folder. */
export function writeModelDir(dir: string, p: Pretrained, tok: Tokenizer): string {
  savePretrained(dir, p);
  tok.save(dir);
  return dir;
}

export function tempDir(prefix = 'alignkit-train-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeJsonl(path: string, rows: readonly unknown[]): string {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

function pick<T>(rng: Random, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** Prompt "a b c =" → completion "c b a": reverse three letters. */
export function reversalTask(n: number, seed: number): { prompt: string; completion: string }[] {
  const rng = new Random(seed);
  const out: { prompt: string; completion: string }[] = [];
  for (let i = 0; i < n; i++) {
    const w = [pick(rng, LETTERS), pick(rng, LETTERS), pick(rng, LETTERS)];
    out.push({ prompt: `${w.join(' ')} =`, completion: ` ${[...w].reverse().join(' ')}` });
  }
  return out;
}

/**
 * Preference pairs: the prompt is three letters; chosen repeats them followed by x's, rejected by y's
 * ("chosen contains more of the token class x").
 */
export function preferenceTask(n: number, seed: number, len = 3): { prompt: string; chosen: string; rejected: string }[] {
  const rng = new Random(seed);
  const out: { prompt: string; chosen: string; rejected: string }[] = [];
  for (let i = 0; i < n; i++) {
    const p = [pick(rng, LETTERS), pick(rng, LETTERS), pick(rng, LETTERS)];
    const good: string[] = [],
      bad: string[] = [];
    for (let k = 0; k < len; k++) {
      // chosen: mostly x with a few letters; rejected: mostly y
      good.push(rng.uniform() < 0.75 ? 'x' : pick(rng, LETTERS));
      bad.push(rng.uniform() < 0.75 ? 'y' : pick(rng, LETTERS));
    }
    if (good.join() === bad.join()) good[0] = 'x';
    out.push({ prompt: `${p.join(' ')} =`, chosen: ` ${good.join(' ')}`, rejected: ` ${bad.join(' ')}` });
  }
  return out;
}

/**
 * Preference pairs that need counting: completions of `len` tokens drawn from x, y and letters; chosen is the
 * one with more x's ("contains more of the token class x"). Pairs with equal counts are redrawn.
 */
export function countingPreferenceTask(n: number, seed: number, len = 5): { prompt: string; chosen: string; rejected: string }[] {
  const rng = new Random(seed);
  const draw = (): string[] => Array.from({ length: len }, () => (rng.uniform() < 0.4 ? 'x' : rng.uniform() < 0.5 ? 'y' : pick(rng, LETTERS)));
  const xs = (w: string[]) => w.filter((t) => t === 'x').length;
  const out: { prompt: string; chosen: string; rejected: string }[] = [];
  while (out.length < n) {
    const a = draw(),
      b = draw();
    if (xs(a) === xs(b)) continue;
    const [good, bad] = xs(a) > xs(b) ? [a, b] : [b, a];
    const p = [pick(rng, LETTERS), pick(rng, LETTERS)];
    out.push({ prompt: `${p.join(' ')} =`, chosen: ` ${good.join(' ')}`, rejected: ` ${bad.join(' ')}` });
  }
  return out;
}
