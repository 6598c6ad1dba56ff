// alignkit's public API: the names the README documents.
export { Tensor, tidy, keep, noGrad, emptyCache } from './engine/tensor.js';
export { Random } from './engine/random.js';
export { AdamW, clipGradNorm, gradNorm, lrMultiplier } from './engine/optim.js';
export { core as engine } from './engine/native.js';
export { matmul } from './engine/ops/matmul.js';
export { autocast, bf16Supported } from './engine/autocast.js';
export type { Precision } from './engine/autocast.js';
export * as ops from './engine/ops/all.js';
export { Transformer } from './models/transformer.js';
export type { ForwardOptions } from './models/transformer.js';
export { gpt2Config, llamaConfig } from './models/config.js';
export type { CausalLMConfig } from './models/config.js';
export { generate } from './models/generate.js';
export type { GenerateOptions, GenerateResult } from './models/generate.js';
export { KVCache } from './models/kv-cache.js';
export { nextTokenLogprobs, sequenceScore, lastTokenIndex, tokenValues } from './models/heads.js';
export { loadPretrained, savePretrained, newPretrained } from './io/pretrained.js';
export type { Pretrained } from './io/pretrained.js';
export { saveAdapter, loadAdapter } from './io/peft.js';
export { readSafetensors, writeSafetensors, toFloat32 } from './io/safetensors.js';
export { writeGguf } from './io/gguf.js';
export { exportGguf } from './io/gguf-export.js';
export { Tokenizer, trainByteLevelBPE } from './tokenizer/index.js';
export { dpoLoss } from './train/losses.js';
export { bradleyTerryLoss } from './train/bradley-terry.js';

// trainers (TRL's shape: new XTrainer({ model, args, trainDataset, evalDataset, processingClass, peftConfig }).train())
export { SFTTrainer, SFTConfig, loadSFTData, evaluateSequences } from './train/sft.js';
export type { SFTTrainerInputs } from './train/sft.js';
export { RewardTrainer, RewardConfig, loadRewardData, loadRewardModel, toRewardModel, rewardScores, rewardMetrics } from './train/reward.js';
export type { RewardTrainerInputs, RewardExample } from './train/reward.js';
export { DPOTrainer, DPOConfig, loadDPOData, dpoLossFromLogps } from './train/dpo.js';
export type { DPOTrainerInputs, DPOExample } from './train/dpo.js';
export { PPOTrainer, PPOConfig } from './train/ppo.js';
export type { PPOTrainerInputs } from './train/ppo.js';
export { RLOOTrainer, RLOOConfig } from './train/rloo.js';
export { GRPOTrainer, GRPOConfig } from './train/grpo.js';
export type { OnlineInputs, PromptItem } from './train/rl/online-trainer.js';
export type { ScoreFunction, ScoreInfo } from './train/rl/scorer.js';
export { rewardModelScorer } from './train/rl/scorer.js';
export { ValueHead } from './train/rl/value-head.js';
export { TrainerBase, TrainingDivergedError, TrainingInterruptedError } from './train/loop.js';
export type { TrainOutput, TrainOptions, Metrics } from './train/loop.js';
export type { SupervisedInputs, DatasetInput } from './train/supervised.js';
export type { PeftConfig } from './train/model-args.js';
export { runTraining, TRAINERS } from './train/run.js';
export type { TrainerKind, RunResult } from './train/run.js';
export { TRAINING_FIELDS } from './train/args.js';
export type { TrainingArgs } from './train/args.js';

// option tables (how every config is declared and checked)
export { defineConfig, resolveOptions, formatHelp, markdownTable, f, OptionError } from './options/fields.js';
export type { ConfigSpec, ConfigOf, Field, FieldTable, OptionsOf } from './options/fields.js';

// data
export { loadSftDataset, loadPreferenceDataset, loadPromptDataset, DataError } from './data/index.js';
export type { DataSource } from './data/index.js';

// Constitutional AI and AI feedback
export type { TextModel, Prompt, GenerationRequest, Generation, ChoiceRequest, TranscriptFormat } from './feedback/text-model.js';
export { PLAIN_TRANSCRIPT, CHAT_TRANSCRIPT, formatFor, normalize } from './feedback/text-model.js';
export { LocalTextModel } from './feedback/local-model.js';
export { OpenAITextModel } from './feedback/openai-model.js';
export { openTextModel } from './feedback/open.js';
export { readConstitution, parseConstitution, samplePrinciple, ConstitutionError } from './cai/constitution.js';
export type { Constitution, Principle } from './cai/constitution.js';
export { DEFAULT_CONSTITUTION } from './cai/default-constitution.js';
export { revise } from './cai/revise.js';
export type { ReviseOptions, Transcript } from './cai/revise.js';
export { labelPairs, judgePairs, samplePairs, positionBias } from './cai/ai-labels.js';
export type { LabelOptions, LabelRecord, PairRow } from './cai/ai-labels.js';
export { constitutionalScorer } from './cai/scorer.js';
export { aiJudge, sampleReplies } from './cai/evaluate.js';
export { runRecipe, RECIPE_FIELDS } from './cai/recipe.js';
