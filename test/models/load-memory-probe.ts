// Peak memory of loading a model (its own process, so the peak is the loader's):
//   node load-memory-probe.js write <dir>   writes a random GPT-2 (d 512, 8 layers, vocab 50257: ~200 MB float32)
//   node load-memory-probe.js load <dir>    prints {before, peak, f32Bytes}
import { parseConfig } from '../../src/io/config.js';
import { loadPretrained, savePretrained } from '../../src/io/pretrained.js';
import { Transformer } from '../../src/models/transformer.js';

const [mode, dir] = process.argv.slice(2);
if (mode === 'write') {
  const hfConfig = parseConfig({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 512, n_layer: 8, n_head: 8, n_positions: 256, vocab_size: 50257 });
  const model = Transformer.random(hfConfig.model, 0);
  savePretrained(dir!, { model, hfConfig, generation: null, score: null });
} else if (mode === 'load') {
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  const { model } = loadPretrained(dir!);
  let bytes = 0;
  for (const p of model.parameters()) bytes += p.size * 4;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ before, peak, f32Bytes: bytes }));
}
