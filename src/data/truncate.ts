// Truncation rules (max_length, max_prompt_length, max_completion_length, truncation_mode) as pure plans over
// lengths: which span of the prompt and of each completion survives. One prompt may be shared by several
// completions (chosen and rejected): the plan cuts the prompt once, so both sequences keep the same prompt ids.
//
//   1. max_prompt_length: a longer prompt keeps its first (keep_start) or last (keep_end) max_prompt_length tokens.
//   2. max_completion_length: a longer completion keeps its first max_completion_length tokens.
//   3. max_length, on prompt + completion (the longest completion when there are several):
//      keep_start keeps the first max_length tokens of the sequence: completions lose their ends; a prompt of
//        max_length tokens or more leaves no completion token (the caller reports the row, never drops it);
//      keep_end keeps the last max_length tokens: the prompt loses its start first (by the same amount for all
//        completions); a completion longer than max_length alone also loses its start.
// Language-modelling text is a completion with an empty prompt (so keep_start / keep_end keep the first / last
// max_length tokens, as TRL's SFT truncation does).

export type TruncationMode = 'keep_start' | 'keep_end';

export interface TruncationOptions {
  /** tokens of prompt + completion; null/undefined: no limit */
  maxLength?: number | null;
  /** tokens of the prompt; null/undefined: no limit */
  maxPromptLength?: number | null;
  /** tokens of each completion; null/undefined: no limit */
  maxCompletionLength?: number | null;
  /** default 'keep_start' (TRL's default) */
  truncationMode?: TruncationMode;
}

/** [start, end) of the tokens kept. */
export interface Span {
  start: number;
  end: number;
}

interface TruncationPlan {
  prompt: Span;
  completions: Span[];
  /** whether anything was cut */
  truncated: boolean;
}

function checkLimit(name: string, v: number | null | undefined, min: number): void {
  if (v === null || v === undefined) return;
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min} (or null for no limit), got ${String(v)}`);
}

/** Throws a clear Error for bad limits or an unknown truncation mode. */
export function checkTruncationOptions(o: TruncationOptions): void {
  checkLimit('max_length', o.maxLength, 1);
  checkLimit('max_prompt_length', o.maxPromptLength, 0);
  checkLimit('max_completion_length', o.maxCompletionLength, 1);
  const m = o.truncationMode ?? 'keep_start';
  if (m !== 'keep_start' && m !== 'keep_end') throw new Error(`truncation_mode must be 'keep_start' or 'keep_end', got ${JSON.stringify(m)}`);
}

/** The spans of a prompt and its completions that the limits keep (see the rules at the top of this file). */
export function planTruncation(promptLength: number, completionLengths: readonly number[], o: TruncationOptions): TruncationPlan {
  const mode = o.truncationMode ?? 'keep_start';
  const prompt: Span = { start: 0, end: promptLength };
  const completions: Span[] = completionLengths.map((n) => ({ start: 0, end: n }));
  const mpl = o.maxPromptLength;
  if (mpl !== null && mpl !== undefined && promptLength > mpl) {
    if (mode === 'keep_start') prompt.end = mpl;
    else prompt.start = promptLength - mpl;
  }
  const mcl = o.maxCompletionLength;
  if (mcl !== null && mcl !== undefined) for (const c of completions) c.end = Math.min(c.end, mcl);
  const ml = o.maxLength;
  if (ml !== null && ml !== undefined && completions.length) {
    const p = prompt.end - prompt.start;
    const longest = Math.max(...completions.map((c) => c.end - c.start));
    if (p + longest > ml) {
      if (mode === 'keep_start') {
        if (p >= ml) {
          prompt.end = prompt.start + ml;
          for (const c of completions) c.end = c.start;
        } else for (const c of completions) c.end = Math.min(c.end, c.start + ml - p);
      } else {
        const cut = Math.min(p + longest - ml, p);
        prompt.start += cut;
        const room = ml - (p - cut);
        for (const c of completions) if (c.end - c.start > room) c.start = c.end - room;
      }
    }
  }
  const truncated = prompt.end - prompt.start < promptLength || completions.some((c, i) => c.end - c.start < completionLengths[i]);
  return { prompt, completions, truncated };
}
