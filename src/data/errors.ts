// Errors of the data layer and the report of a dataset pass. Every problem with a record is a DataError that
// names the file, the line (1-based; for in-memory arrays the record number) and the field, so the message reads
// `data.jsonl:17: chosen[1].role: expected one of system, user, assistant, ...`. In skipInvalid mode the same
// errors are counted in a DataReport instead of thrown; nothing is dropped without being counted.

export type DataErrorCode =
  /** the file cannot be read */
  | 'io'
  /** a line (or the file) is not valid JSON */
  | 'invalid_json'
  /** a record is not a JSON object */
  | 'not_object'
  /** the record's columns match no dataset format */
  | 'unknown_format'
  /** a column of the format is absent */
  | 'missing_column'
  /** a column has the wrong JSON type (or mixes standard and conversational) */
  | 'wrong_type'
  /** an empty text, prompt, completion or message list */
  | 'empty'
  /** chosen and rejected are identical */
  | 'identical_pair'
  /** a conversational message with a bad role or content */
  | 'bad_message'
  /** the chat template failed or broke the prompt-prefix property */
  | 'template'
  /** max_length / max_prompt_length left no completion token */
  | 'truncated';

/** Where a record came from: the file (or an in-memory name) and its 1-based line (or record number). */
export interface Source {
  file: string;
  line: number;
}

export class DataError extends Error {
  readonly file: string;
  readonly line: number;
  /** the column or path inside the record ('' when the whole record or line is at fault) */
  readonly field: string;
  readonly code: DataErrorCode;
  /** the message without the location */
  readonly reason: string;

  constructor(where: Source, field: string, code: DataErrorCode, reason: string) {
    // a file that cannot be read has no line to point at: `cannot read FILE: no such file or folder`
    super(code === 'io' ? `cannot read ${where.file}: ${reason}` : `${where.file}:${where.line}: ${field ? `${field}: ` : ''}${reason}`);
    this.name = 'DataError';
    this.file = where.file;
    this.line = where.line;
    this.field = field;
    this.code = code;
    this.reason = reason;
  }
}

/** A record left out in skipInvalid mode. */
export interface SkippedRecord {
  file: string;
  line: number;
  field: string;
  code: DataErrorCode;
  reason: string;
}

/** What a pass over a dataset found. */
export interface DataReport {
  /** the file path (or in-memory name) */
  source: string;
  /** records read: JSONL lines that are not blank, or array elements */
  read: number;
  /** records that became examples */
  kept: number;
  /** records left out (skipInvalid); read = kept + skipped */
  skipped: number;
  /** skipped records per error code */
  skippedByCode: Partial<Record<DataErrorCode, number>>;
  /** the first few skipped records with their reasons (maxReportedSkips, default 5) */
  firstSkipped: SkippedRecord[];
  /** kept examples that max_length / max_prompt_length / max_completion_length shortened */
  truncated: number;
}

export function emptyReport(source: string): DataReport {
  return { source, read: 0, kept: 0, skipped: 0, skippedByCode: {}, firstSkipped: [], truncated: 0 };
}

/**
 * Handles a record's error: throws it (strict mode) or counts it in the report (skipInvalid). Errors that are
 * not DataErrors (bugs, I/O) are always rethrown.
 */
export function recordFailure(report: DataReport, err: unknown, skipInvalid: boolean, maxReported: number): void {
  if (!(err instanceof DataError) || !skipInvalid || err.code === 'io') throw err;
  report.skipped++;
  report.skippedByCode[err.code] = (report.skippedByCode[err.code] ?? 0) + 1;
  if (report.firstSkipped.length < maxReported) {
    report.firstSkipped.push({ file: err.file, line: err.line, field: err.field, code: err.code, reason: err.reason });
  }
}

/** A short human summary of a report (for logs). */
export function formatReport(r: DataReport): string {
  let s = `${r.source}: ${r.kept} of ${r.read} records kept`;
  if (r.truncated) s += `, ${r.truncated} truncated`;
  if (r.skipped) {
    const codes = Object.entries(r.skippedByCode)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    s += `, ${r.skipped} skipped (${codes})`;
    for (const k of r.firstSkipped) s += `\n  skipped ${k.file}:${k.line}: ${k.field ? `${k.field}: ` : ''}${k.reason}`;
    if (r.skipped > r.firstSkipped.length) s += `\n  ... and ${r.skipped - r.firstSkipped.length} more`;
  }
  return s;
}
