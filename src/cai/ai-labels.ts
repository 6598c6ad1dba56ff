// Stage 2 of Constitutional AI: AI feedback (RLAIF). For each pair of replies and a principle drawn for it, the
// feedback model answers a multiple-choice question ("which reply … ? (A) … (B) … The answer is: (") and
// p(A) is the softmax of the options' log-probabilities over the two options. Asked in both orders and averaged
// (on by default), the position bias cancels; the bias measured on the way is reported. An ensemble of K
// principles per pair averages their p(A). With chain of thought the model reasons first and then answers, and
// each answer's probability is clamped to [0.4, 0.6] as the CAI paper does (reasoned answers are overconfident).
// Output: TRL preference rows (prompt, chosen, rejected) plus `soft_label` — the probability that chosen is the
// better reply — and the principle ids; pairs whose label is within `margin` of 0.5 can be dropped (counted).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type ChoiceRequest, type Prompt, type TextModel, type TranscriptFormat, formatFor, normalize } from '../feedback/text-model.js';
import { Journal, readJournal, writeJsonlAtomic } from '../io/journal.js';
import { Progress } from '../io/progress.js';
import { type Constitution, comparisonExamples, samplePrinciple } from './constitution.js';
import { COMPARISON_OPTIONS, type Request, comparisonPrompt, reasonedChoicePrompt, reasoningPrompt, responsePrompt } from './prompts.js';
import { type GenerationSettings, stepSeed } from './revise.js';

export interface PairRow {
  id: string;
  prompt: Request;
  response_a: string;
  response_b: string;
}

export interface LabelOptions {
  model: TextModel;
  constitution: Constitution;
  pairs: readonly PairRow[];
  /** the preference file to write (labels.jsonl, the journal, goes next to it) */
  out: string;
  seed?: number;
  /** principles per pair, averaged (default 1) */
  ensemble?: number;
  /** ask in both orders and average (default true) */
  swap?: boolean;
  /** reason first, then answer; probabilities clamped to [0.4, 0.6] */
  chainOfThought?: boolean;
  /** how the reasoning is sampled (chain of thought) */
  reasoning?: GenerationSettings;
  /** drop pairs whose soft label is within this of 0.5 (default 0: keep all but exact ties) */
  margin?: number;
  /** pairs per batch of questions (default 32) */
  batchSize?: number;
  format?: TranscriptFormat;
  quiet?: boolean;
}

/** One line of the journal: everything the labels came from. */
export interface LabelRecord {
  id: string;
  prompt: Request;
  response_a: string;
  response_b: string;
  /** p(response_a is better), debiased and averaged over the principles */
  p_a: number;
  principles: string[];
  /** per principle: p(first position) in the order (a, b), and (swap) in the order (b, a) */
  first: number[];
  swapped: number[];
  reasoning?: string[];
  policy_prompt: Prompt;
}

interface LabelResult {
  out: string;
  journal: string;
  written: number;
  /** pairs left out because their label was too close to 0.5 */
  dropped: number;
  /** the measured preference for the first position: mean of (p(first | a,b) + p(first | b,a))/2 − 0.5 (swap only) */
  positionBias: number | null;
  labelled: number;
  seconds: number;
}

/** The TRL preference row of a labelled pair, or null when it is dropped. */
function preferenceRow(r: LabelRecord, margin: number): Record<string, unknown> | null {
  if (Math.abs(r.p_a - 0.5) <= margin) return null;
  const aWins = r.p_a > 0.5;
  const chosen = aWins ? r.response_a : r.response_b,
    rejected = aWins ? r.response_b : r.response_a;
  const soft = aWins ? r.p_a : 1 - r.p_a;
  const wrap = (x: string): unknown => (typeof r.policy_prompt === 'string' ? ` ${x}` : [{ role: 'assistant', content: x }]);
  return { id: r.id, prompt: r.policy_prompt, chosen: wrap(chosen), rejected: wrap(rejected), soft_label: soft, principle_ids: r.principles };
}

const clamp = (p: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, p));

/** How the questions are asked (LabelOptions without the files). */
type JudgeOptions = Pick<LabelOptions, 'model' | 'constitution' | 'seed' | 'ensemble' | 'swap' | 'chainOfThought' | 'reasoning' | 'format'>;

/** Labels a batch of pairs in memory: the questions of every pair go to the model together. */
export async function judgePairs(o: JudgeOptions, batch: readonly PairRow[]): Promise<LabelRecord[]> {
  const seed = o.seed ?? 0,
    K = o.ensemble ?? 1,
    swap = o.swap ?? true;
  if (!Number.isInteger(K) || K < 1) throw new Error(`cai label: ensemble must be a whole number >= 1, got ${K}`);
  const format = o.format ?? formatFor(o.model);
  const orders = (p: PairRow): [string, string][] =>
    swap
      ? [
          [p.response_a, p.response_b],
          [p.response_b, p.response_a],
        ]
      : [[p.response_a, p.response_b]];
  const principles = batch.map((p) => Array.from({ length: K }, (_, k) => samplePrinciple(o.constitution, seed, p.id, k)));
  // chain of thought: one reasoning per (pair, principle, order)
  let reasons: string[][] | null = null;
  if (o.chainOfThought) {
    const g = o.reasoning ?? { maxTokens: 128, temperature: 0 };
    const reqs = batch.flatMap((p, i) =>
      principles[i]!.flatMap((pr, k) =>
        orders(p).map(([x, y], order) => ({
          prompt: reasoningPrompt(format, p.prompt, x, y, pr),
          maxTokens: g.maxTokens,
          temperature: g.temperature,
          topP: g.topP,
          stop: format.stop,
          seed: stepSeed(seed, p.id, 100 + 2 * k + order),
        })),
      ),
    );
    const gen = await o.model.generate(reqs);
    const per = K * (swap ? 2 : 1);
    reasons = batch.map((_, i) => gen.slice(i * per, (i + 1) * per).map((x) => x.text.trim()));
  }
  const questions: ChoiceRequest[] = [];
  batch.forEach((p, i) =>
    principles[i]!.forEach((pr, k) =>
      orders(p).forEach(([x, y], order) => {
        const prompt = reasons
          ? reasonedChoicePrompt(format, p.prompt, x, y, pr, reasons[i]![k * (swap ? 2 : 1) + order]!)
          : comparisonPrompt(format, p.prompt, x, y, pr, comparisonExamples(o.constitution, pr));
        questions.push({ prompt, options: COMPARISON_OPTIONS });
      }),
    ),
  );
  const lps = await o.model.choiceLogprobs(questions);
  let q = 0;
  return batch.map((p, i) => {
    const first: number[] = [],
      swapped: number[] = [];
    let pa = 0;
    for (let k = 0; k < K; k++) {
      let f = normalize(lps[q++]!)[0]!;
      if (o.chainOfThought) f = clamp(f, 0.4, 0.6);
      first.push(f);
      if (swap) {
        let g = normalize(lps[q++]!)[0]!; // p(first) in the order (b, a) = p(b is better)
        if (o.chainOfThought) g = clamp(g, 0.4, 0.6);
        swapped.push(g);
        pa += (f + 1 - g) / 2;
      } else pa += f;
    }
    const rec: LabelRecord = {
      id: p.id,
      prompt: p.prompt,
      response_a: p.response_a,
      response_b: p.response_b,
      p_a: pa / K,
      principles: principles[i]!.map((x) => x.id),
      first,
      swapped,
      policy_prompt: responsePrompt(format, p.prompt),
    };
    if (reasons) rec.reasoning = reasons[i]!;
    return rec;
  });
}

/** The measured preference for the first position over labelled pairs (null without the swap). */
export function positionBias(records: readonly LabelRecord[]): number | null {
  let bias = 0,
    n = 0;
  for (const r of records)
    r.swapped.forEach((g, k) => {
      bias += (r.first[k]! + g) / 2 - 0.5;
      n++;
    });
  return n ? bias / n : null;
}

/** Labels (or resumes labelling) every pair. */
export async function labelPairs(o: LabelOptions): Promise<LabelResult> {
  const t0 = performance.now();
  const bs = o.batchSize ?? 32,
    margin = o.margin ?? 0;
  if (!(margin >= 0 && margin < 0.5)) throw new Error(`cai label: margin must be in [0, 0.5), got ${margin}`);
  mkdirSync(dirname(o.out), { recursive: true });
  const journalPath = join(dirname(o.out), 'labels.jsonl');
  if (journalPath === o.out) throw new Error(`cai label: the output ${o.out} would overwrite the journal labels.jsonl; name it otherwise`);
  const old = readJournal<LabelRecord>(journalPath);
  const done = new Set(old.map((r) => r.id));
  const todo = o.pairs.filter((p) => !done.has(p.id));
  writeJsonlAtomic(o.out, old.map((r) => preferenceRow(r, margin)).filter(Boolean));
  const journal = new Journal(journalPath),
    out = new Journal(o.out);
  const progress = new Progress('pairs', o.pairs.length, done.size, o.quiet);
  const records: LabelRecord[] = [...old];
  try {
    for (let s = 0; s < todo.length; s += bs) {
      const batch = todo.slice(s, s + bs);
      for (const rec of await judgePairs(o, batch)) {
        journal.append(rec);
        const row = preferenceRow(rec, margin);
        if (row) out.append(row);
        records.push(rec);
      }
      progress.tick(batch.length);
    }
  } finally {
    journal.close();
    out.close();
    progress.stop();
  }
  const written = records.filter((r) => preferenceRow(r, margin)).length;
  return { out: o.out, journal: journalPath, written, dropped: records.length - written, positionBias: positionBias(records), labelled: todo.length, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Pairs to label from a policy: two samples per prompt (seeded per prompt); a prompt whose two samples are the
 * same text gives no pair (counted).
 */
export async function samplePairs(
  policy: TextModel,
  prompts: readonly { id: string; prompt: Request }[],
  g: GenerationSettings,
  seed = 0,
  format: TranscriptFormat = formatFor(policy),
): Promise<{ pairs: PairRow[]; identical: number }> {
  if (g.temperature === 0) throw new Error('sampling pairs needs temperature > 0 (with 0 both samples are the same)');
  const reqs = prompts.flatMap((p) =>
    [0, 1].map((k) => ({ prompt: responsePrompt(format, p.prompt), maxTokens: g.maxTokens, temperature: g.temperature, topP: g.topP, stop: format.stop, seed: stepSeed(seed, p.id, 1000 + k) })),
  );
  const out = await policy.generate(reqs);
  const pairs: PairRow[] = [];
  let identical = 0;
  prompts.forEach((p, i) => {
    const a = out[2 * i]!.text.trim(),
      b = out[2 * i + 1]!.text.trim();
    if (a === b) identical++;
    else pairs.push({ id: p.id, prompt: p.prompt, response_a: a, response_b: b });
  });
  return { pairs, identical };
}
