// `alignkit generate`: sample from any Hugging Face checkpoint directory (model + tokenizer files, or a PEFT
// adapter folder), streaming the single-prompt case. Generation stops at every EOS the checkpoint knows of
// (config.json, generation_config.json and the tokenizer's), and the length is clipped to the model's context.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Pretrained, eosTokenIds, loadPretrained } from '../io/pretrained.js';
import { generate } from '../models/generate.js';
import type { Command } from '../options/command.js';
import { UsageError } from '../options/command.js';
import { type OptionsOf, f } from '../options/fields.js';
import { Tokenizer } from '../tokenizer/index.js';

const OPTIONS = {
  model: f.string('', 'a Hugging Face model folder with its tokenizer (or a PEFT adapter folder)', { required: true, metavar: 'DIR' }),
  prompt: f.list([], 'a prompt (give several for a batch)', { repeatable: true, metavar: 'TEXT' }),
  max_new_tokens: f.integer(64, 'new tokens at most (clipped to what the context leaves)', { min: 1 }),
  temperature: f.number(0.7, 'sampling temperature (0: greedy)', { min: 0 }),
  top_k: f.integer(null, 'sample from the k most likely tokens', { min: 1, nullable: true }),
  top_p: f.number(null, 'sample from the smallest set of tokens with this much probability', { min: 0, max: 1, exclusiveMin: true, nullable: true }),
  seed: f.integer(0, 'sampling seed', { min: 0 }),
  chat: f.boolean(false, "render each prompt as a user turn with the tokenizer's chat template"),
  stop: f.list([], 'stop when the continuation contains this text (repeatable)', { repeatable: true, metavar: 'TEXT' }),
};

type GenerateOptions = OptionsOf<typeof OPTIONS>;

/** The ids generation stops at (every EOS the checkpoint and its tokenizer name); warns when they disagree. */
export function stopIds(p: Pretrained, tok: Tokenizer, warn: (s: string) => void): number[] {
  const { ids, mismatch } = eosTokenIds(p, tok.eosTokenId);
  if (mismatch) warn(`the tokenizer's EOS (${tok.eosTokenId}) differs from the checkpoint's (${ids.filter((i) => i !== tok.eosTokenId).join(', ')}); stopping on all of them`);
  return ids;
}

export function runGenerate(
  o: GenerateOptions,
  out: (s: string) => void = (s) => process.stdout.write(s),
  warn: (s: string) => void = (s) => process.stderr.write(`generate: ${s}\n`),
): { text: string[]; finishReason: string[] } {
  if (!existsSync(o.model)) throw new UsageError(`--model ${o.model}: no such folder`);
  if (!existsSync(join(o.model, 'tokenizer.json'))) throw new UsageError(`--model ${o.model} has no tokenizer.json (a checkpoint folder needs its tokenizer)`);
  if (!o.prompt.length) throw new UsageError('give at least one --prompt');
  const tok = Tokenizer.fromPretrained(o.model);
  const p = loadPretrained(o.model);
  const { model } = p;
  try {
    const ids = o.prompt.map((q) =>
      o.chat ? (tok.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true, tokenize: true }) as number[]) : tok.encode(q, { addSpecialTokens: true }),
    );
    const longest = Math.max(...ids.map((x) => x.length));
    const room = model.config.maxPositions - longest;
    if (room < 1) throw new UsageError(`the prompt has ${longest} tokens and fills the model's context of ${model.config.maxPositions} positions`);
    let maxNew = o.max_new_tokens;
    if (maxNew > room) {
      warn(`--max-new-tokens ${maxNew} is more than the context leaves after the prompt (${longest} of ${model.config.maxPositions} positions); generating at most ${room}`);
      maxNew = room;
    }
    const single = ids.length === 1;
    if (single) out(o.prompt[0]!);
    const res = generate(model, ids, {
      maxNewTokens: maxNew,
      temperature: o.temperature,
      topK: o.top_k ?? undefined,
      topP: o.top_p ?? undefined,
      seed: o.seed,
      eosTokenId: stopIds(p, tok, warn),
      padTokenId: tok.padTokenId ?? tok.eosTokenId ?? 0,
      stopStrings: o.stop.length ? o.stop : undefined,
      decode: (t) => tok.decode(t, { skipSpecialTokens: true }),
      // stream the single-prompt case token by token
      onToken: single
        ? (() => {
            let shown = '';
            const acc: number[] = [];
            return (_row: number, token: number) => {
              acc.push(token);
              const text = tok.decode(acc, { skipSpecialTokens: true });
              if (!text.endsWith('\uFFFD')) {
                out(text.slice(shown.length));
                shown = text;
              }
            };
          })()
        : undefined,
    });
    const text = res.tokens.map((t) => tok.decode(t, { skipSpecialTokens: true }));
    if (single) out('\n');
    else text.forEach((t, i) => out(JSON.stringify({ prompt: o.prompt[i], completion: t, finish_reason: res.finishReason[i] }) + '\n'));
    return { text, finishReason: res.finishReason };
  } finally {
    model.dispose();
    p.score?.dispose();
  }
}

export const GENERATE_COMMAND: Command = {
  name: 'generate',
  summary: 'sample from a Hugging Face checkpoint folder (streams a single prompt)',
  options: OPTIONS,
  async run(ctx) {
    runGenerate(
      ctx.values as GenerateOptions,
      (s) => ctx.out.write(s),
      (s) => ctx.err.write(`generate: ${s}\n`),
    );
    return 0;
  },
};
