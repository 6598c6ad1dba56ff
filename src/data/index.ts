// The data layer of the trainers: TRL's dataset formats read from JSONL / JSON, validated with errors that name
// file:line:field, tokenised with TRL's BOS/EOS/truncation rules, batched with shifted loss masks, packed, and
// iterated in a seeded, resumable order. See docs/data.md.

export { DataError, formatReport } from './errors.js';
export type { DataErrorCode, DataReport } from './errors.js';
export { readJsonl, readRecords, arrayElementLines } from './read.js';
export type { DataSource } from './read.js';
export { detectFormat, extractPrompt } from './formats.js';
export { planTruncation } from './truncate.js';
export { RecordTokenizer, leadingSpecialIds, padTokenId } from './tokenize.js';
export type { PreferenceExample, PromptExample, SequenceExample } from './tokenize.js';
export { collatePreference, collatePrompts, collateSequences } from './collate.js';
export type { Batch, PreferenceBatch } from './collate.js';
export { packSequences } from './pack.js';
export { EpochSampler } from './sampler.js';
export type { SamplerState } from './sampler.js';
export { DatasetReader, checkDataset, loadDataset, loadPreferenceDataset, loadPromptDataset, loadSftDataset } from './dataset.js';
