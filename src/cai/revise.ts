// Stage 1 of Constitutional AI, supervised (SL-CAI): for each prompt, sample the model's reply; then for each
// of `revisions` rounds, draw a principle (seeded by the prompt's id and the round), ask for a critique of the
// latest reply against it and then for a revision — turns of one conversation. Many prompts decode together
// (one prompt costs 1 + 2·revisions generations). Output, appended per finished prompt:
//   transcripts.jsonl  every step with its principle ids and the seeds
//   sft.jsonl          TRL prompt/completion rows: the request → the final revision
//   prefs.jsonl        TRL preference rows: chosen = the final revision, rejected = the first reply
// Resumable: transcripts.jsonl is the journal (one fsync'd line per finished prompt); a restart after kill -9
// drops a torn last line, rebuilds sft.jsonl and prefs.jsonl from it, skips finished prompt ids and redoes the
// batch that was in flight — every prompt appears exactly once.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Generation, GenerationRequest, Prompt, TextModel, TranscriptFormat } from '../feedback/text-model.js';
import { formatFor } from '../feedback/text-model.js';
import { Journal, readJournal, writeJsonlAtomic } from '../io/journal.js';
import { Progress } from '../io/progress.js';
import { type Constitution, critiqueExamples, samplePrinciple } from './constitution.js';
import { type Request, critiquePrompt, responsePrompt, revisionPrompt } from './prompts.js';

export interface PromptRow {
  id: string;
  prompt: Request;
}

export interface GenerationSettings {
  maxTokens: number;
  temperature: number;
  topP?: number;
}

export interface ReviseOptions {
  /** the model whose replies are revised (the policy) */
  model: TextModel;
  /** the model that writes critiques and revisions (default: the same model, as in the CAI paper) */
  critic?: TextModel;
  constitution: Constitution;
  prompts: readonly PromptRow[];
  outputDir: string;
  /** critique → revision rounds per prompt (default 1) */
  revisions?: number;
  seed?: number;
  generation: GenerationSettings;
  /** prompts decoded together (default 32) */
  batchSize?: number;
  /** default: the model's chat template when it has one, else the plain Human/Assistant transcript */
  format?: TranscriptFormat;
  quiet?: boolean;
}

export interface RevisionStep {
  principle: string;
  critique: string;
  revision: string;
}

/** One line of transcripts.jsonl. */
export interface Transcript {
  id: string;
  prompt: Request;
  response: string;
  steps: RevisionStep[];
  seed: number;
  model: string;
  critic: string;
  /** how the reply was prompted (the SFT and preference rows use the same) */
  policy_prompt: Prompt;
}

interface ReviseResult {
  transcripts: string;
  sft: string;
  prefs: string;
  /** prompts done by this call (the rest were done before a restart) */
  done: number;
  skipped: number;
  tokens: number;
  seconds: number;
}

/** The seed of one generation: a function of the run's seed, the prompt id and the step alone. */
export function stepSeed(seed: number, id: string, step: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const ch of `${id}\u0000${step}`) h = Math.imul(h ^ ch.codePointAt(0)!, 0x01000193) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The SFT row of a transcript (TRL prompt/completion, in the format the reply was prompted in). */
function sftRow(t: Transcript): Record<string, unknown> {
  const final = t.steps.length ? t.steps[t.steps.length - 1]!.revision : t.response;
  if (typeof t.policy_prompt === 'string') return { id: t.id, prompt: t.policy_prompt, completion: ` ${final}` };
  return { id: t.id, prompt: t.policy_prompt, completion: [{ role: 'assistant', content: final }] };
}

/** The preference row of a transcript: the final revision over the first reply. */
function prefRow(t: Transcript): Record<string, unknown> | null {
  const final = t.steps.length ? t.steps[t.steps.length - 1]!.revision : t.response;
  if (final.trim() === t.response.trim()) return null; // nothing to prefer
  if (typeof t.policy_prompt === 'string') return { id: t.id, prompt: t.policy_prompt, chosen: ` ${final}`, rejected: ` ${t.response}` };
  return { id: t.id, prompt: t.policy_prompt, chosen: [{ role: 'assistant', content: final }], rejected: [{ role: 'assistant', content: t.response }] };
}

/** Runs (or resumes) the supervised stage. */
export async function revise(o: ReviseOptions): Promise<ReviseResult> {
  const t0 = performance.now();
  const rounds = o.revisions ?? 1,
    seed = o.seed ?? 0,
    bs = o.batchSize ?? 32;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`revise: revisions must be a whole number >= 1, got ${rounds}`);
  const format = o.format ?? formatFor(o.model);
  mkdirSync(o.outputDir, { recursive: true });
  const paths = { transcripts: join(o.outputDir, 'transcripts.jsonl'), sft: join(o.outputDir, 'sft.jsonl'), prefs: join(o.outputDir, 'prefs.jsonl') };
  const ids = new Set<string>();
  for (const p of o.prompts) {
    if (ids.has(p.id)) throw new Error(`revise: prompt id ${JSON.stringify(p.id)} appears twice (ids must be unique to resume)`);
    ids.add(p.id);
  }
  // resume: the journal says what is finished; the derived files are rebuilt from it
  const old = readJournal<Transcript>(paths.transcripts);
  const finished = new Set(old.map((t) => t.id));
  for (const t of old) if (!ids.has(t.id)) throw new Error(`${paths.transcripts}: prompt id ${JSON.stringify(t.id)} is not in the prompts (another run's output folder?)`);
  if (old.length || existsSync(paths.sft) || existsSync(paths.prefs)) {
    writeJsonlAtomic(paths.sft, old.map(sftRow));
    writeJsonlAtomic(paths.prefs, old.map(prefRow).filter(Boolean));
  }
  const todo = o.prompts.filter((p) => !finished.has(p.id));
  const journal = new Journal(paths.transcripts),
    sft = new Journal(paths.sft),
    prefs = new Journal(paths.prefs);
  const progress = new Progress('prompts', o.prompts.length, finished.size, o.quiet);
  let tokens = 0;
  const critic = o.critic ?? o.model;
  const gen = async (reqs: GenerationRequest[], m: TextModel = critic): Promise<Generation[]> => {
    const g = await m.generate(reqs);
    for (const x of g) tokens += x.tokens;
    return g;
  };
  const settings = (p: PromptRow, step: number, prompt: Prompt): GenerationRequest => ({
    prompt,
    maxTokens: o.generation.maxTokens,
    temperature: o.generation.temperature,
    topP: o.generation.topP,
    stop: format.stop,
    seed: stepSeed(seed, p.id, step),
  });
  try {
    for (let s = 0; s < todo.length; s += bs) {
      const batch = todo.slice(s, s + bs);
      const tokensBefore = tokens;
      const policyPrompts = batch.map((p) => responsePrompt(format, p.prompt));
      const first = await gen(
        batch.map((p, i) => settings(p, 0, policyPrompts[i]!)),
        o.model,
      );
      const latest = first.map((g) => g.text.trim());
      const steps: RevisionStep[][] = batch.map(() => []);
      for (let r = 0; r < rounds; r++) {
        const principles = batch.map((p) => samplePrinciple(o.constitution, seed, p.id, r));
        const crit = await gen(batch.map((p, i) => settings(p, 1 + 2 * r, critiquePrompt(format, p.prompt, latest[i]!, principles[i]!, critiqueExamples(o.constitution, principles[i]!)))));
        const rev = await gen(
          batch.map((p, i) => settings(p, 2 + 2 * r, revisionPrompt(format, p.prompt, latest[i]!, crit[i]!.text.trim(), principles[i]!, critiqueExamples(o.constitution, principles[i]!)))),
        );
        batch.forEach((_, i) => {
          const revision = rev[i]!.text.trim();
          steps[i]!.push({ principle: principles[i]!.id, critique: crit[i]!.text.trim(), revision });
          if (revision) latest[i] = revision; // an empty revision keeps the reply it was asked to revise
        });
      }
      batch.forEach((p, i) => {
        const t: Transcript = { id: p.id, prompt: p.prompt, response: first[i]!.text.trim(), steps: steps[i]!, seed, model: o.model.id, critic: critic.id, policy_prompt: policyPrompts[i]! };
        journal.append(t);
        sft.append(sftRow(t));
        const pr = prefRow(t);
        if (pr) prefs.append(pr);
      });
      progress.tick(batch.length, { tokens: tokens - tokensBefore });
    }
  } finally {
    journal.close();
    sft.close();
    prefs.close();
    progress.stop();
  }
  return { ...paths, done: todo.length, skipped: finished.size, tokens, seconds: (performance.now() - t0) / 1000 };
}
