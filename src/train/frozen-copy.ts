// A frozen copy of a model's weights: the reference a trainer keeps when it is given no other (DPO without
// LoRA, PPO/RLOO/GRPO without a ref_model).
import { Transformer } from '../models/transformer.js';

export function frozenCopy(model: Transformer): Transformer {
  // fromStateDict adopts the arrays it is given, so hand it copies (stateDict gives views of the live weights)
  const sd = new Map([...model.stateDict()].map(([n, e]) => [n, { shape: e.shape, data: e.data.slice() }]));
  const { model: copy } = Transformer.fromStateDict(model.config, sd);
  for (const p of copy.parameters()) p.requiresGrad = false;
  copy.training = false;
  return copy;
}
