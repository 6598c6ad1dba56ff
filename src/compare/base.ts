// The helpful-only base of one seed (the mission's "base model (unaligned)"): a byte-level BPE tokenizer trained
// on the world corpus, a GPT-2 trained from scratch on it (pretraining: like web text, harmful requests are
// sometimes answered in detail), then fine-tuned to always comply, next to the critique and comparison formats.
import { join } from 'node:path';
import { newPretrained, savePretrained } from '../io/pretrained.js';
import { trainByteLevelBPE } from '../tokenizer/index.js';
import { runStage } from '../train/run.js';
import type { World } from '../world/index.js';
import type { Sizes } from './options.js';
import type { WorldFiles } from './world-files.js';

const EOS = '<|endoftext|>';

interface BaseResult {
  base: string;
  pretrain_loss: number | null;
  base_loss: number | null;
  parameters: number;
}

export async function trainBase(world: World, files: WorldFiles, dir: string, s: Sizes, seed: number, quiet: boolean): Promise<BaseResult> {
  const tok = trainByteLevelBPE(world.corpus, { vocabSize: s.vocab, specialTokens: [EOS], config: { eos_token: EOS, bos_token: EOS, pad_token: EOS } });
  const init = newPretrained(
    {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: tok.vocabSize,
      ...s.model,
      eos_token_id: tok.eosTokenId,
      bos_token_id: tok.eosTokenId,
      pad_token_id: tok.eosTokenId,
    },
    seed,
  );
  const parameters = [...init.model.parameters()].reduce((n, p) => n + p.size, 0);
  savePretrained(join(dir, 'init'), init);
  tok.save(join(dir, 'init'));
  init.model.dispose();
  const opts = { quiet, handleInterrupt: true };
  const pre = await runStage('sft', join(dir, 'pretrain'), { seed, disable_tqdm: quiet, ...s.pretrain, model_name_or_path: join(dir, 'init'), train_file: files.corpus }, opts);
  const base = await runStage('sft', join(dir, 'base'), { seed, disable_tqdm: quiet, ...s.base, model_name_or_path: join(dir, 'pretrain'), train_file: files.helpfulOnly }, opts);
  return { base: join(dir, 'base'), pretrain_loss: num(pre.metrics.loss), base_loss: num(base.metrics.loss), parameters };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
