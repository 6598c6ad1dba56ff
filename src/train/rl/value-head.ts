// PPO's critic: a linear value head `v_head` (weight [1, C], bias [1]) on the policy's final hidden states, so
// one forward pass gives both the token log-probs and the values (the shared-trunk layout of Ziegler et al. 2019
// and TRL's AutoModelForCausalLMWithValueHead). It starts at zero: the first values are 0 and the value loss
// does not move the trunk until the head has learnt something.
import { Tensor } from '../../engine/tensor.js';
import { tokenValues } from '../../models/heads.js';

export class ValueHead {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(readonly hiddenSize: number) {
    if (!Number.isInteger(hiddenSize) || hiddenSize <= 0) throw new Error(`ValueHead: hidden size must be a positive integer, got ${hiddenSize}`);
    this.weight = Tensor.param(Tensor.zeros([1, hiddenSize]), 'v_head.weight');
    this.bias = Tensor.param(Tensor.zeros([1]), 'v_head.bias');
  }

  /** Values [B, T] of hidden states [B, T, C]. */
  forward(hidden: Tensor): Tensor {
    if (hidden.ndim !== 3 || hidden.shape[2] !== this.hiddenSize) throw new Error(`ValueHead: hidden states ${hidden.describe()} do not end in the head's size ${this.hiddenSize}`);
    return tokenValues(hidden, this.weight, this.bias);
  }

  /** The head's tensors by their checkpoint names. */
  state(): Map<string, Tensor> {
    return new Map([
      ['v_head.weight', this.weight],
      ['v_head.bias', this.bias],
    ]);
  }

  parameters(): Tensor[] {
    return [this.weight, this.bias];
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
}
