// `alignkit export gguf`: a Hugging Face model folder (or a LoRA adapter folder, merged) as a GGUF file that
// llama.cpp (and everything built on it: ollama, LM Studio, node-llama-cpp) runs.
import { exportGguf } from '../io/gguf-export.js';
import type { Command } from '../options/command.js';
import { UsageError } from '../options/command.js';
import { type OptionsOf, f } from '../options/fields.js';

const OPTIONS = {
  model: f.string('', 'the model folder (GPT-2, Llama, Mistral or Qwen2; a LoRA adapter folder is merged into its base)', { required: true, metavar: 'DIR' }),
  out: f.string('', 'the GGUF file to write (its folder must exist)', { required: true, metavar: 'FILE' }),
  dtype: f.choice(['f32', 'f16'], 'f32', 'f32 (lossless) or f16 (matrices in half precision)'),
  tokenizer: f.string(null, 'the tokenizer folder or tokenizer.json; default: the model folder', { nullable: true, metavar: 'PATH' }),
  name: f.string(null, "general.name in the file; default: the model folder's name", { nullable: true }),
};

export const EXPORT_COMMAND: Command = {
  name: 'export gguf',
  summary: 'write a model folder as a GGUF file for llama.cpp (f32 or f16)',
  options: OPTIONS,
  async run(ctx) {
    const v = ctx.values as OptionsOf<typeof OPTIONS>;
    let r;
    try {
      r = exportGguf({ model: v.model, out: v.out, dtype: v.dtype, tokenizer: v.tokenizer ?? undefined, name: v.name ?? undefined });
    } catch (e) {
      if ((e as Error).message.startsWith('export gguf: ')) throw new UsageError((e as Error).message.slice('export gguf: '.length));
      throw e;
    }
    for (const w of r.warnings) ctx.err.write(`export gguf: ${w}\n`);
    ctx.err.write(`export gguf: wrote ${v.out} (${v.dtype})\n`);
    return 0;
  },
};
