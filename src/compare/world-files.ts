// The world of one seed as the files every method reads: TRL-format JSONL (prompt/completion demonstrations,
// prompt-only rows, plain-text documents), the held-out evaluation prompts, and the red-team / RL prompt splits.
// Written once per seed; each method reads only the files its recipe allows (the CAI method never reads a human
// demonstration or comparison).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type World, buildWorld, chatPrompt } from '../world/index.js';
import type { Sizes } from './options.js';

export interface WorldFiles {
  dir: string;
  corpus: string;
  /** always-comply demonstrations plus the critique/comparison formats (the helpful-only base) */
  helpfulOnly: string;
  /** aligned demonstrations (the SFT method's human demonstrations) */
  aligned: string;
  /** prompts of the RLHF rounds and of PPO */
  rlPrompts: string;
  /** red-team requests of the supervised CAI stage, and requests of its AI-labelled pairs (disjoint halves of the RL split; bare requests, the recipe renders them) */
  caiPrompts: string;
  caiPairPrompts: string;
  /** benign and sensitive requests the base answers unrevised into SL-CAI (helpfulness samples) */
  caiHelpfulPrompts: string;
  /** held-out evaluation prompts (no stage trains on them) */
  evalPrompts: string;
  counts: { demonstrations: number; demonstrations_harm: number };
}

const writer =
  (write: boolean) =>
  (path: string, rows: readonly unknown[]): string => {
    if (write) writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return path;
  };

export function worldOf(seed: number, s: Sizes): World {
  return buildWorld(seed, s.world);
}

/** The seed's files in `dir` (written unless `write` is false: then only their paths and counts). */
export function writeWorldFiles(world: World, dir: string, s: Sizes, write = true): WorldFiles {
  if (write) mkdirSync(dir, { recursive: true });
  const jsonl = writer(write);
  const p = (f: string) => join(dir, f);
  const aligned = world.aligned.slice(0, s.demonstrations);
  const rl = world.rlPrompts.map((r, i) => ({ id: `rl-${i}`, prompt: chatPrompt(r.text) }));
  // the CAI recipe renders its requests itself (the same PLAIN_TRANSCRIPT turns): bare requests
  // red-team prompts (the harmful ones) for critique → revision, the others for the helpfulness samples mixed
  // into SL-CAI; the AI-labelled pairs on the other half of the split
  const bare = world.rlPrompts.map((r, i) => ({ id: `rl-${i}`, prompt: r.text, kind: r.kind }));
  const half = bare.slice(0, bare.length >> 1);
  const cai = half.filter((r) => r.kind === 'harmful').slice(0, s.caiPrompts);
  const caiHelpful = half.filter((r) => r.kind !== 'harmful').slice(0, s.caiPrompts);
  const caiPairs = bare.slice(bare.length >> 1, (bare.length >> 1) + s.caiPairs);
  return {
    dir,
    corpus: jsonl(
      p('corpus.jsonl'),
      world.corpus.map((text) => ({ text })),
    ),
    helpfulOnly: jsonl(
      p('helpful_only.jsonl'),
      [...world.helpfulOnly, ...world.formatDemos].map(({ prompt, completion }) => ({ prompt, completion })),
    ),
    aligned: jsonl(
      p('aligned.jsonl'),
      aligned.map(({ prompt, completion }) => ({ prompt, completion })),
    ),
    rlPrompts: jsonl(p('rl_prompts.jsonl'), rl),
    caiPrompts: jsonl(p('cai_prompts.jsonl'), cai),
    caiHelpfulPrompts: jsonl(p('cai_helpful_prompts.jsonl'), caiHelpful),
    caiPairPrompts: jsonl(p('cai_pair_prompts.jsonl'), caiPairs),
    evalPrompts: jsonl(
      p('eval_prompts.jsonl'),
      world.evalPrompts.map((r, i) => ({ id: `eval-${i}`, prompt: chatPrompt(r.text), kind: r.kind })),
    ),
    counts: { demonstrations: aligned.length, demonstrations_harm: aligned.filter((d) => d.kind !== 'benign').length },
  };
}
