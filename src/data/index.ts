// The data layer of the trainers: TRL's dataset formats read from JSONL / JSON, validated with errors that name
// file:line:field, tokenised with TRL's BOS/EOS/truncation rules, batched with shifted loss masks, packed, and
// iterated in a seeded, resumable order. See docs/data.md.

export { DataError, emptyReport, formatReport, recordFailure } from './errors.js';
export type { DataErrorCode, DataReport, SkippedRecord, Source } from './errors.js';
export { readJsonl, readJsonArray, readArray, readRecords, fileKind, arrayElementLines, sourceName } from './read.js';
export type { RawRecord, FileKind, DataSource } from './read.js';
export { DEFAULT_ROLES, describeFormat, detectFormat, extractPrompt, formatColumns, jsonEqual, validateRecord } from './formats.js';
export type {
  Content,
  DatasetFormat,
  DatasetType,
  FormatOptions,
  LanguageModelingRecord,
  Message,
  PreferenceRecord,
  PromptCompletionRecord,
  PromptOnlyRecord,
  ValidRecord,
} from './formats.js';
export { checkTruncationOptions, planTruncation } from './truncate.js';
export type { Span, TruncationMode, TruncationOptions, TruncationPlan } from './truncate.js';
export { RecordTokenizer, leadingSpecialIds, padTokenId } from './tokenize.js';
export type { Example, PreferenceExample, PromptExample, SequenceExample, TokenizeOptions } from './tokenize.js';
export { collatePreference, collatePrompts, collateSequences } from './collate.js';
export type { Batch, PadOptions, PreferenceBatch, PreferenceCollateOptions, PreferenceLayout, PromptBatch, SequenceCollateOptions } from './collate.js';
export { packSequences } from './pack.js';
export type { PackedRow } from './pack.js';
export { EpochSampler } from './sampler.js';
export type { SampledBatch, SamplerOptions, SamplerState } from './sampler.js';
export { DatasetReader, checkDataset, loadDataset, loadPreferenceDataset, loadPromptDataset, loadSftDataset } from './dataset.js';
export type { DatasetOptions, LoadedDataset, ReadOptions } from './dataset.js';
