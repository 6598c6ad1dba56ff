// A simulated annotator for the lock-picking world: the gold preference (src/world/gold.ts) with a configurable
// error rate and position bias, seeded. It stands where a person labelling pairs would; everything built on it
// must say its labels are simulated.
//
// The model. Response `a` is shown first. For a pair with a gold winner, with e = errorRate and p = positionBias:
//   P(label = first shown | the gold winner is shown first)  = 1 − e + p
//   P(label = first shown | the gold winner is shown second) = e + p
// so over pairs whose winner is first or second equally often the annotator disagrees with gold at rate e and
// picks the first-shown response at rate 0.5 + p. Errors fall more on the second position when p > 0. Both
// probabilities must lie in [0, 1], which needs |p| ≤ min(e, 1 − e): a bias shows only through mistakes.
// Gold ties are labelled 'tie' (ties: 'tie', the default) or, with ties: 'pick', the first-shown response with
// probability 0.5 + p.
import type { Random } from '../engine/random.js';
import { type Preference, goldPreference } from '../world/gold.js';
import type { Request } from '../world/requests.js';

interface SimulatedAnnotatorOptions {
  /** probability of disagreeing with the gold winner, averaged over positions, in [0, 1] */
  errorRate: number;
  /** how much more often the first-shown response is picked than 1/2, in [−min(e, 1−e), min(e, 1−e)] */
  positionBias?: number;
  rng: Random;
  /** what a gold tie becomes: 'tie' (default) or a pick of one side */
  ties?: 'tie' | 'pick';
}

interface SimulatedLabel {
  /** the simulated annotator's label */
  choice: Preference;
  /** the gold preference it was drawn from */
  gold: Preference;
  simulated: true;
}

function check(o: SimulatedAnnotatorOptions): number {
  const e = o.errorRate,
    p = o.positionBias ?? 0;
  if (!(e >= 0 && e <= 1)) throw new Error(`simulatedPreference: errorRate must be in [0, 1], got ${e}`);
  const lim = Math.min(e, 1 - e);
  if (!(Math.abs(p) <= lim + 1e-12))
    throw new Error(`simulatedPreference: positionBias ${p} is outside [−${lim}, ${lim}] (|positionBias| ≤ min(errorRate, 1 − errorRate), since a bias shows only through mistakes)`);
  return p;
}

/** A simulated label for the pair (a shown first, b second) of responses to a world prompt. */
export function simulatedPreference(prompt: Request | string, a: string, b: string, o: SimulatedAnnotatorOptions): SimulatedLabel {
  const p = check(o);
  const gold = goldPreference(prompt, a, b);
  const u = o.rng.uniform();
  let first: boolean;
  if (gold === 'tie') {
    if ((o.ties ?? 'tie') === 'tie') return { choice: 'tie', gold, simulated: true };
    first = u < 0.5 + p;
  } else {
    first = u < (gold === 'a' ? 1 - o.errorRate + p : o.errorRate + p);
  }
  return { choice: first ? 'a' : 'b', gold, simulated: true };
}
