// The architecture description the models are built from (what config.json says, in our own names).

export type Architecture = 'gpt2' | 'llama';

export interface CausalLMConfig {
  arch: Architecture;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** key/value heads (grouped-query attention); = numHeads for GPT-2 */
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  normEps: number;
  /** gelu_new (tanh), gelu (erf) for GPT-2; silu for Llama-family SwiGLU */
  activation: 'gelu_new' | 'gelu' | 'silu';
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** q, k and v projections carry biases (Qwen2, attention_bias) */
  qkvBias: boolean;
  /** the attention output projection carries a bias (attention_bias) */
  oBias: boolean;
  /** gate/up/down projections carry biases (mlp_bias) */
  mlpBias: boolean;
  padTokenId?: number | null;
  bosTokenId?: number | null;
  eosTokenId?: number | number[] | null;
}

export function gpt2Config(o: Partial<CausalLMConfig> & { vocabSize: number; hiddenSize: number; numLayers: number; numHeads: number }): CausalLMConfig {
  return {
    arch: 'gpt2',
    numKvHeads: o.numHeads,
    headDim: o.hiddenSize / o.numHeads,
    intermediateSize: 4 * o.hiddenSize,
    maxPositions: 1024,
    normEps: 1e-5,
    activation: 'gelu_new',
    ropeTheta: 0,
    tieWordEmbeddings: true,
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    ...o,
  };
}

export function llamaConfig(o: Partial<CausalLMConfig> & { vocabSize: number; hiddenSize: number; numLayers: number; numHeads: number; intermediateSize: number }): CausalLMConfig {
  return {
    arch: 'llama',
    numKvHeads: o.numHeads,
    headDim: o.hiddenSize / o.numHeads,
    maxPositions: 2048,
    normEps: 1e-6,
    activation: 'silu',
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    ...o,
  };
}

export function validateConfig(c: CausalLMConfig): void {
  const bad = (m: string): never => {
    throw new Error(`model config: ${m}`);
  };
  for (const k of ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'maxPositions'] as const)
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${c[k]}`);
  if (c.numHeads % c.numKvHeads !== 0) bad(`numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
  if (c.arch === 'gpt2' && c.numHeads * c.headDim !== c.hiddenSize) bad(`GPT-2 needs numHeads·headDim = hiddenSize`);
  if (c.arch === 'llama' && c.headDim % 2 !== 0) bad(`rotary embeddings need an even headDim, got ${c.headDim}`);
}
