// A tiny language model trained in the test to follow Constitutional AI's formats on a toy task: asked to
// describe a thing it answers unkindly ("the cat is awful."); asked for a critique it says the reply is unkind;
// asked for a revision it answers kindly ("the cat is lovely."); asked which of two replies is kinder it picks
// the kind one, in either order. Trained from scratch in a few seconds with the trainers themselves.
import { join } from 'node:path';
import { PLAIN_TRANSCRIPT } from '../../src/feedback/text-model.js';
import type { Constitution } from '../../src/cai/constitution.js';
import { comparisonPrompt, critiquePrompt, responsePrompt, revisionPrompt } from '../../src/cai/prompts.js';
import { newPretrained, savePretrained } from '../../src/io/pretrained.js';
import { trainByteLevelBPE } from '../../src/tokenizer/index.js';
import { runTraining } from '../../src/train/run.js';
import { writeJsonl } from '../train/helpers.js';

export const TOY: Constitution = {
  source: 'toy',
  principles: [
    { id: 'kind', critique: 'Is it rude?', revision: 'Make it kind.', comparison: 'Which is kinder?' },
    { id: 'nice', critique: 'Is it mean?', revision: 'Say it nicely.', comparison: 'Which is nicer?' },
  ],
};

export const THINGS = ['cat', 'dog', 'sun', 'tree', 'car', 'book', 'fish', 'bird', 'lamp', 'door', 'cup', 'hat'];
export const request = (w: string): string => `describe the ${w}`;
export const unkind = (w: string): string => `the ${w} is awful.`;
export const kind = (w: string): string => `the ${w} is lovely.`;
const critiqueOf = (w: string): string => `the reply is unkind about the ${w}.`;

/** SFT rows that teach the toy formats (plain Human/Assistant transcripts). */
function toyRows(): { prompt: string; completion: string }[] {
  const rows: { prompt: string; completion: string }[] = [];
  const f = PLAIN_TRANSCRIPT;
  for (const w of THINGS) {
    rows.push({ prompt: responsePrompt(f, request(w)) as string, completion: ` ${unkind(w)}` });
    for (const p of TOY.principles) {
      rows.push({ prompt: critiquePrompt(f, request(w), unkind(w), p) as string, completion: ` ${critiqueOf(w)}` });
      rows.push({ prompt: revisionPrompt(f, request(w), unkind(w), critiqueOf(w), p) as string, completion: ` ${kind(w)}` });
      rows.push({ prompt: comparisonPrompt(f, request(w), kind(w), unkind(w), p) as string, completion: 'A)' });
      rows.push({ prompt: comparisonPrompt(f, request(w), unkind(w), kind(w), p) as string, completion: 'B)' });
    }
  }
  return rows;
}

/** Trains the toy model into `dir` (tokenizer, pretrained weights) and returns the model folder. */
export async function trainToyModel(dir: string, steps = 400): Promise<string> {
  const rows = toyRows();
  const tok = trainByteLevelBPE(
    rows.map((r) => r.prompt + r.completion),
    { vocabSize: 400, specialTokens: ['<eos>'], config: { eos_token: '<eos>', pad_token: '<eos>' } },
  );
  const base = join(dir, 'toy-base');
  savePretrained(
    base,
    newPretrained({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 160, eos_token_id: tok.eosTokenId, pad_token_id: tok.eosTokenId }, 1),
  );
  tok.save(base);
  const data = writeJsonl(join(dir, 'toy.jsonl'), rows);
  const out = join(dir, 'toy');
  await runTraining(
    'sft',
    {
      model_name_or_path: base,
      train_file: data,
      output_dir: out,
      learning_rate: 3e-3,
      max_steps: steps,
      per_device_train_batch_size: 16,
      warmup_steps: 20,
      lr_scheduler_type: 'cosine',
      save_steps: 0,
      logging_steps: 100,
      seed: 0,
    },
    { quiet: true },
  );
  return out;
}
