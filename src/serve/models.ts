// The served models as the HTTP thread sees them: name, tokenizer (the adapter folder's own, else its base
// model's), chat template or not, context length and every EOS id (the checkpoint's and the tokenizer's).
// `--model NAME=DIR` (or a bare DIR, named after its folder) is parsed here too.
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Tokenizer } from '../tokenizer/index.js';
import type { LoadedModel, ModelSpec } from './protocol.js';

export interface ServedModel {
  name: string;
  info: LoadedModel;
  tok: Tokenizer;
  hasChatTemplate: boolean;
  /** ids that end generation (config.json, generation_config.json and the tokenizer's EOS) */
  stopIds: number[];
  created: number;
}

/** `NAME=DIR` or `DIR` → a model spec; the folder must exist. */
export function parseModelArg(arg: string): ModelSpec {
  const eq = arg.indexOf('=');
  const name = eq > 0 ? arg.slice(0, eq) : basename(resolve(arg));
  const dir = eq > 0 ? arg.slice(eq + 1) : arg;
  if (!/^[\w.:/@+-]{1,128}$/.test(name)) throw new Error(`--model ${arg}: the name ${JSON.stringify(name)} may hold letters, digits and . _ - : / @ + only`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--model ${arg}: no such folder ${dir}`);
  return { name, dir: resolve(dir) };
}

/** Loads the tokenizer of each loaded model and checks that it fits the model. */
export function servedModels(loaded: readonly LoadedModel[]): ServedModel[] {
  const created = Math.floor(Date.now() / 1000);
  return loaded.map((info) => {
    const tokDir = [info.dir, info.baseDir].find((d) => existsSync(join(d, 'tokenizer.json')));
    if (!tokDir)
      throw new Error(`model ${info.name}: no tokenizer.json in ${info.dir}${info.adapter ? ` or its base ${info.baseDir}` : ''} (the server needs the tokenizer to read prompts and write text)`);
    const tok = Tokenizer.fromPretrained(tokDir);
    if (tok.vocabSize > info.vocabSize)
      throw new Error(`model ${info.name}: the tokenizer has ${tok.vocabSize} tokens but the model only ${info.vocabSize} embedding rows, so prompts could encode to ids the model cannot read`);
    const stop = new Set(info.eosIds);
    const te = tok.eosTokenId;
    if (te !== undefined && te < info.vocabSize) stop.add(te);
    return { name: info.name, info, tok, hasChatTemplate: tok.chatTemplate !== null, stopIds: [...stop], created };
  });
}
