// Shared helpers of the data-layer tests: the package root and the byte-level tokenizer fixture, a variant of it
// whose post-processor adds BOS (<s>, with EOS </s> that is also the pad token), temporary files.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '../../src/tokenizer/index.js';

import { packageRoot } from '../../src/engine/package-root.js';

function fixtureDir(): string {
  return join(packageRoot(), 'test', 'fixtures', 'hf-fixtures', 'tok-bytelevel');
}

/** The byte-level fixture: bos = eos = <|endoftext|> (id 0), no pad, adds no BOS; template "<|role|>\ncontent<|end|>\n". */
export function fixtureTokenizer(): Tokenizer {
  return Tokenizer.fromPretrained(fixtureDir());
}

const PLAIN_TEMPLATE = "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
/** The same template starting with the BOS token (as Llama / Mistral / Gemma templates do). */
export const BOS_TEMPLATE = '{{ bos_token }}' + PLAIN_TEMPLATE;
/** A template that closes assistant turns with the EOS token (as Llama-2 / ChatML-with-eos templates do). */
export const EOS_TEMPLATE =
  "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ '<|end|>' }}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/**
 * The fixture with added tokens <s> and </s>, a TemplateProcessing post-processor that puts <s> before every
 * text (like Llama's), bos <s>, eos </s>, pad </s> (pad = EOS), and the given chat template.
 */
export function bosTokenizer(template: string = PLAIN_TEMPLATE): Tokenizer {
  const json = JSON.parse(readFileSync(join(fixtureDir(), 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const added = json.added_tokens as Array<Record<string, unknown>>;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  json.added_tokens = [...added, special(2000, '<s>'), special(2001, '</s>')];
  const config = { bos_token: '<s>', eos_token: '</s>', pad_token: '</s>' };
  const probe = Tokenizer.fromJSON(json, config, template);
  const bos = probe.tokenToId('<s>')!;
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [bos], tokens: ['<s>'] } },
  };
  return Tokenizer.fromJSON(json, config, template);
}

/** A temporary folder removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-data-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes lines (strings written as-is, other values as JSON) to a JSONL file. */
export function writeJsonl(path: string, lines: unknown[]): string {
  writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return path;
}

export const count = (a: ArrayLike<number>, v: number): number => Array.prototype.filter.call(a, (x: number) => x === v).length;
export const arr = (a: ArrayLike<number>): number[] => Array.from(a);
