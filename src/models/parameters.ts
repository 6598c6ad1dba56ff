// The parameters of a decoder-only transformer in transformers' names and stored shapes (GPT-2's Conv1D
// weights are [in, out]; Llama's Linear weights are [out, in]): the one description both the model and the
// checkpoint loader use.
import type { CausalLMConfig } from './config.js';

/** What the layout depends on. */
type LayoutConfig = Pick<
  CausalLMConfig,
  'arch' | 'vocabSize' | 'hiddenSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize' | 'maxPositions' | 'tieWordEmbeddings' | 'qkvBias' | 'oBias' | 'mlpBias'
>;

/** Parameter names and shapes of the base model (the `transformer.` / `model.` part) and LM head. */
export function parameterShapes(c: LayoutConfig): [string, number[]][] {
  const C = c.hiddenSize,
    out: [string, number[]][] = [];
  if (c.arch === 'gpt2') {
    const p = 'transformer.';
    out.push([p + 'wte.weight', [c.vocabSize, C]], [p + 'wpe.weight', [c.maxPositions, C]]);
    for (let i = 0; i < c.numLayers; i++) {
      const h = `${p}h.${i}.`;
      out.push(
        [h + 'ln_1.weight', [C]],
        [h + 'ln_1.bias', [C]],
        [h + 'attn.c_attn.weight', [C, 3 * C]],
        [h + 'attn.c_attn.bias', [3 * C]],
        [h + 'attn.c_proj.weight', [C, C]],
        [h + 'attn.c_proj.bias', [C]],
        [h + 'ln_2.weight', [C]],
        [h + 'ln_2.bias', [C]],
        [h + 'mlp.c_fc.weight', [C, c.intermediateSize]],
        [h + 'mlp.c_fc.bias', [c.intermediateSize]],
        [h + 'mlp.c_proj.weight', [c.intermediateSize, C]],
        [h + 'mlp.c_proj.bias', [C]],
      );
    }
    out.push([p + 'ln_f.weight', [C]], [p + 'ln_f.bias', [C]]);
  } else {
    const p = 'model.',
      q = c.numHeads * c.headDim,
      kv = c.numKvHeads * c.headDim,
      I = c.intermediateSize;
    out.push([p + 'embed_tokens.weight', [c.vocabSize, C]]);
    for (let i = 0; i < c.numLayers; i++) {
      const l = `${p}layers.${i}.`;
      out.push([l + 'input_layernorm.weight', [C]]);
      out.push([l + 'self_attn.q_proj.weight', [q, C]], [l + 'self_attn.k_proj.weight', [kv, C]], [l + 'self_attn.v_proj.weight', [kv, C]]);
      if (c.qkvBias) out.push([l + 'self_attn.q_proj.bias', [q]], [l + 'self_attn.k_proj.bias', [kv]], [l + 'self_attn.v_proj.bias', [kv]]);
      out.push([l + 'self_attn.o_proj.weight', [C, q]]);
      if (c.oBias) out.push([l + 'self_attn.o_proj.bias', [C]]);
      out.push([l + 'post_attention_layernorm.weight', [C]]);
      out.push([l + 'mlp.gate_proj.weight', [I, C]], [l + 'mlp.up_proj.weight', [I, C]], [l + 'mlp.down_proj.weight', [C, I]]);
      if (c.mlpBias) out.push([l + 'mlp.gate_proj.bias', [I]], [l + 'mlp.up_proj.bias', [I]], [l + 'mlp.down_proj.bias', [C]]);
    }
    out.push([p + 'norm.weight', [C]]);
  }
  if (!c.tieWordEmbeddings) out.push(['lm_head.weight', [c.vocabSize, C]]);
  return out;
}
