// `alignkit compare`: its options, and the sizes of every stage. One set of sizes serves the quick run (one
// seed) and the full one (three seeds); `size: tiny` shrinks every stage for the test suite (a run in seconds
// whose figures mean nothing but whose table is built the same way).
import { type OptionsOf, f } from '../options/fields.js';

export const COMPARE_FIELDS = {
  output_dir: f.string('compare-out', 'where the world, every model, the samples, compare.json and report.html go', { metavar: 'DIR' }),
  seeds: f.integer(1, 'seeds (worlds, models, annotators); the table gives mean ± std over them', { min: 1, max: 10 }),
  first_seed: f.integer(0, 'the first seed', { min: 0 }),
  methods: f.list(
    ['sft', 'rlhf', 'dpo', 'cai', 'cai-dpo'],
    "the methods to run, comma-separated (sft, rlhf, dpo, cai, cai-dpo); dpo needs rlhf's comparisons and cai-dpo cai's AI labels: those run too, shown only when named",
    { metavar: 'NAMES' },
  ),
  size: f.choice(['default', 'tiny'], 'default', "stage sizes: 'tiny' only checks the plumbing (figures mean nothing)"),
  annotators: f.integer(4, 'simulated annotators (each with its own token on the labeling server)', { min: 1 }),
  error_rate: f.number(0.1, "the simulated annotators' chance of flipping a decisive judgement", { min: 0, max: 0.5 }),
  position_bias: f.number(0.05, "the simulated annotators' chance of answering 'left' whatever is shown", { min: 0, max: 1 }),
  json: f.boolean(false, 'print one JSON object per line (the base, then each method) instead of the table'),
  report: f.boolean(true, 'write report.html (charts as inline SVG)'),
};

export type CompareOptions = OptionsOf<typeof COMPARE_FIELDS>;

export const METHODS = ['sft', 'rlhf', 'dpo', 'cai', 'cai-dpo'] as const;
export type Method = (typeof METHODS)[number];

/** Every stage's size. */
export interface Sizes {
  world: { corpusQA: number; corpusCritiques: number; corpusComparisons: number; helpfulOnly: number; formatDemos: number; aligned: number; rlPrompts: number; evalPerKind: number };
  vocab: number;
  model: { n_embd: number; n_layer: number; n_head: number; n_positions: number };
  pretrain: Record<string, unknown>;
  base: Record<string, unknown>;
  sft: Record<string, unknown>;
  /** aligned demonstrations the SFT method gets */
  demonstrations: number;
  rounds: number;
  labelsPerRound: number;
  reward: Record<string, unknown>;
  ppo: Record<string, unknown>;
  dpo: Record<string, unknown>;
  /** red-team prompts of the supervised CAI stage and prompts of its AI-labelled pairs */
  caiPrompts: number;
  caiPairs: number;
  caiSft: Record<string, unknown>;
  maxNewTokens: number;
  temperature: number;
  /** samples per held-out prompt */
  samples: number;
  /** held-out gold pairs for reward-model accuracy */
  rmPairs: number;
}

const common = { per_device_train_batch_size: 16, logging_steps: 10, save_steps: 0 };

const DEFAULT_SIZES: Sizes = {
  world: { corpusQA: 6000, corpusCritiques: 1500, corpusComparisons: 1500, helpfulOnly: 1500, formatDemos: 500, aligned: 1500, rlPrompts: 600, evalPerKind: 40 },
  vocab: 768,
  model: { n_embd: 96, n_layer: 3, n_head: 4, n_positions: 192 },
  pretrain: { ...common, per_device_train_batch_size: 32, max_steps: 1200, learning_rate: 3e-3, warmup_steps: 30, lr_scheduler_type: 'cosine', max_length: 128, packing: true },
  base: { ...common, per_device_train_batch_size: 32, max_steps: 150, learning_rate: 1e-3, max_length: 192 },
  sft: { ...common, max_steps: 100, learning_rate: 1e-3, max_length: 192 },
  demonstrations: 600,
  rounds: 2,
  labelsPerRound: 400,
  reward: { ...common, num_train_epochs: 4, learning_rate: 5e-4, max_length: 192 },
  ppo: { ...common, total_episodes: 1024, learning_rate: 5e-5, response_length: 40, stop_token: 'eos', temperature: 0.7, kl_coef: 0.2, num_ppo_epochs: 2, num_mini_batches: 1 },
  dpo: { ...common, num_train_epochs: 3, learning_rate: 3e-4, beta: 0.3, max_length: 192 },
  caiPrompts: 240,
  caiPairs: 200,
  caiSft: { ...common, max_steps: 100, learning_rate: 1e-3, max_length: 192 },
  maxNewTokens: 40,
  temperature: 0.7,
  samples: 2,
  rmPairs: 200,
};

const tinyCommon = { per_device_train_batch_size: 4, logging_steps: 1, save_steps: 0 };

export const TINY_SIZES: Sizes = {
  world: { corpusQA: 300, corpusCritiques: 60, corpusComparisons: 60, helpfulOnly: 40, formatDemos: 10, aligned: 40, rlPrompts: 40, evalPerKind: 3 },
  vocab: 768,
  model: { n_embd: 32, n_layer: 1, n_head: 2, n_positions: 192 },
  pretrain: { ...tinyCommon, per_device_train_batch_size: 8, max_steps: 300, learning_rate: 1e-2, max_length: 128, packing: true },
  base: { ...tinyCommon, max_steps: 10, learning_rate: 1e-3, max_length: 192 },
  sft: { ...tinyCommon, max_steps: 2, learning_rate: 1e-3, max_length: 192 },
  demonstrations: 12,
  rounds: 2,
  labelsPerRound: 12,
  reward: { ...tinyCommon, max_steps: 2, learning_rate: 5e-4, max_length: 192 },
  ppo: { ...tinyCommon, total_episodes: 4, learning_rate: 5e-5, response_length: 24, stop_token: 'eos', temperature: 0.7, kl_coef: 0.05, num_ppo_epochs: 1 },
  dpo: { ...tinyCommon, max_steps: 2, learning_rate: 5e-4, beta: 0.1, max_length: 192 },
  caiPrompts: 6,
  caiPairs: 6,
  caiSft: { ...tinyCommon, max_steps: 2, learning_rate: 1e-3, max_length: 192 },
  maxNewTokens: 24,
  temperature: 0.7,
  samples: 1,
  rmPairs: 8,
};

export const sizesOf = (size: 'default' | 'tiny'): Sizes => (size === 'tiny' ? TINY_SIZES : DEFAULT_SIZES);
