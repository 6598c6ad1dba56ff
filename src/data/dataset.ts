// The dataset pipeline: records streamed from a file (or an array) -> format detected from the first record's
// columns (or given) -> each record validated -> tokenised into examples. In strict mode (the default) the first
// bad record throws a DataError naming file:line:field; with skipInvalid the bad records are counted in the
// report (by error code, the first few with reasons) and the pass goes on. A dataset with no usable record is
// always an error.

import type { Tokenizer } from '../tokenizer/index.js';
import { DataError, emptyReport, recordFailure, type DataReport, type Source } from './errors.js';
import { describeFormat, detectFormat, validateRecord, type DatasetFormat, type DatasetType, type FormatOptions, type ValidRecord } from './formats.js';
import { type DataSource, readRecords, sourceName } from './read.js';
import { RecordTokenizer, type Example, type PreferenceExample, type PromptExample, type SequenceExample, type TokenizeOptions } from './tokenize.js';

interface ReadOptions extends FormatOptions {
  /** count bad records in the report instead of throwing. Default false. */
  skipInvalid?: boolean;
  /** how many skipped records the report lists with reasons. Default 5. */
  maxReportedSkips?: number;
  /** the name used in messages for an in-memory array. Default '<memory>'. */
  name?: string;
  /** dataset types the caller can use (e.g. SFT: language_modeling, prompt_completion); others are an error */
  accept?: readonly DatasetType[];
  /** who needs the data, for that error ("SFT", "DPO") */
  purpose?: string;
}

type DatasetOptions = ReadOptions & TokenizeOptions;

interface LoadedDataset<E extends Example = Example> {
  format: DatasetFormat;
  examples: E[];
  report: DataReport;
}

/** Streams the valid records of a dataset (counted as kept); problems go to `report` (skipInvalid) or are thrown. */
export class DatasetReader {
  readonly report: DataReport;
  /** known once the first record has been read (or given by opts.type + opts.conversational) */
  format: DatasetFormat | null = null;
  private detectedFrom: Source | null = null;
  private readonly source: DataSource;
  private readonly opts: ReadOptions;

  constructor(source: DataSource, opts: ReadOptions = {}) {
    this.source = source;
    this.opts = opts;
    this.report = emptyReport(sourceName(source, opts.name));
  }

  private fail(err: unknown): void {
    recordFailure(this.report, err, this.opts.skipInvalid ?? false, this.opts.maxReportedSkips ?? 5);
  }

  /**
   * For a record that records() yielded (and counted as kept) but that the caller cannot use (e.g. tokenisation
   * failed): counts it as skipped instead (skipInvalid), or rethrows the error.
   */
  reject(err: unknown): void {
    this.fail(err);
    this.report.kept--;
  }

  private setFormat(f: DatasetFormat, where: Source): void {
    const accept = this.opts.accept;
    if (accept && !accept.includes(f.type)) {
      const hint = accept.includes('prompt_only') && f.type !== 'preference' ? " (pass type: 'prompt_only' to use only the prompt column)" : '';
      throw new Error(
        `${where.file}: ${this.opts.purpose ?? 'this trainer'} needs ${accept.map((t) => t.replace('_', '-')).join(' or ')} data, ` +
          `but the dataset is ${describeFormat(f)} (detected from line ${where.line})${hint}`,
      );
    }
    this.format = f;
    this.detectedFrom = where;
  }

  async *records(): AsyncGenerator<ValidRecord> {
    for await (const raw of readRecords(this.source, this.opts.name)) {
      this.report.read++;
      let rec: ValidRecord | null = null;
      try {
        if (raw.error) throw raw.error;
        if (!this.format) this.setFormat(detectFormat(raw.value, raw.source, this.opts), raw.source);
        rec = validateRecord(raw.value, this.format!, raw.source, this.opts, this.detectedFrom);
      } catch (e) {
        this.fail(e);
      }
      if (rec) {
        this.report.kept++;
        yield rec;
      }
    }
    if (this.report.read === 0) throw new DataError({ file: this.report.source, line: 0 }, '', 'empty', 'the dataset has no records');
  }
}

function noneKept(r: DataReport): Error {
  const first = r.firstSkipped[0];
  return new DataError(
    { file: r.source, line: first?.line ?? 0 },
    first?.field ?? '',
    first?.code ?? 'empty',
    `no usable record: all ${r.read} records were skipped${first ? ` (first: ${first.reason})` : ''}`,
  );
}

/** Validates a dataset without tokenising it (streams: memory stays bounded for JSONL). */
export async function checkDataset(source: DataSource, opts: ReadOptions = {}): Promise<{ format: DatasetFormat; report: DataReport }> {
  const reader = new DatasetReader(source, opts);
  for await (const _rec of reader.records());
  if (reader.report.kept === 0 || !reader.format) throw noneKept(reader.report);
  return { format: reader.format, report: reader.report };
}

/** Reads, validates and tokenises a dataset. */
export async function loadDataset(source: DataSource, tokenizer: Tokenizer, opts: DatasetOptions = {}): Promise<LoadedDataset> {
  const reader = new DatasetReader(source, opts);
  const tok = new RecordTokenizer(tokenizer, opts);
  const examples: Example[] = [];
  for await (const rec of reader.records()) {
    let ex: Example;
    try {
      ex = tok.tokenize(rec);
    } catch (e) {
      reader.reject(e);
      continue;
    }
    examples.push(ex);
    if (ex.truncated) reader.report.truncated++;
  }
  if (examples.length === 0 || !reader.format) throw noneKept(reader.report);
  return { format: reader.format, examples, report: reader.report };
}

/** SFT data: language modelling or prompt-completion, as training sequences. */
export async function loadSftDataset(source: DataSource, tokenizer: Tokenizer, opts: DatasetOptions = {}): Promise<LoadedDataset<SequenceExample>> {
  return (await loadDataset(source, tokenizer, { purpose: 'SFT', ...opts, accept: ['language_modeling', 'prompt_completion'] })) as LoadedDataset<SequenceExample>;
}

/** Preference data (explicit or implicit prompt), as pairs sharing their prompt ids (DPO, reward models). */
export async function loadPreferenceDataset(source: DataSource, tokenizer: Tokenizer, opts: DatasetOptions = {}): Promise<LoadedDataset<PreferenceExample>> {
  return (await loadDataset(source, tokenizer, { purpose: 'preference training', ...opts, accept: ['preference'] })) as LoadedDataset<PreferenceExample>;
}

/** Prompt-only data, as prompts to generate from (PPO). Pass type: 'prompt_only' to take the prompts of other data. */
export async function loadPromptDataset(source: DataSource, tokenizer: Tokenizer, opts: DatasetOptions = {}): Promise<LoadedDataset<PromptExample>> {
  return (await loadDataset(source, tokenizer, { purpose: 'generation (PPO)', ...opts, accept: ['prompt_only'] })) as LoadedDataset<PromptExample>;
}
