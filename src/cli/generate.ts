// `alignkit generate`: sample from any Hugging Face checkpoint directory (model + tokenizer files), streaming.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained } from '../io/pretrained.js';
import { generate } from '../models/generate.js';
import { Tokenizer } from '../tokenizer/index.js';

export interface GenerateCommand {
  model: string;
  prompt: string[];
  max_new_tokens: number;
  temperature: number;
  top_k?: number;
  top_p?: number;
  seed: number;
  chat: boolean;
  stop?: string[];
}

export function runGenerate(o: GenerateCommand, out: (s: string) => void = (s) => process.stdout.write(s)): { text: string[]; finishReason: string[] } {
  if (!o.model) throw new Error('generate: --model <checkpoint directory> is required');
  if (!existsSync(join(o.model, 'tokenizer.json'))) throw new Error(`generate: ${o.model} has no tokenizer.json`);
  if (!o.prompt.length) throw new Error('generate: give at least one --prompt');
  const tok = Tokenizer.fromPretrained(o.model);
  const { model } = loadPretrained(o.model);
  try {
    const ids = o.prompt.map((p) =>
      o.chat ? (tok.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true, tokenize: true }) as number[]) : tok.encode(p, { addSpecialTokens: true }),
    );
    const single = ids.length === 1;
    if (single) out(o.prompt[0]!);
    const res = generate(model, ids, {
      maxNewTokens: o.max_new_tokens,
      temperature: o.temperature,
      topK: o.top_k,
      topP: o.top_p,
      seed: o.seed,
      eosTokenId: model.config.eosTokenId ?? tok.eosTokenId ?? null,
      padTokenId: tok.padTokenId ?? tok.eosTokenId ?? 0,
      stopStrings: o.stop,
      decode: (t) => tok.decode(t, { skipSpecialTokens: true }),
      // stream the single-prompt case token by token
      onToken: single ? (() => {
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
      })() : undefined,
    });
    const text = res.tokens.map((t) => tok.decode(t, { skipSpecialTokens: true }));
    if (single) out('\n');
    else text.forEach((t, i) => out(JSON.stringify({ prompt: o.prompt[i], completion: t, finish_reason: res.finishReason[i] }) + '\n'));
    return { text, finishReason: res.finishReason };
  } finally {
    model.dispose();
  }
}
