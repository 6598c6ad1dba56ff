// The critiques written in the world's critique → revision demonstrations: one short line saying what is wrong
// (or right) with a response of a given gold label to a request of a given kind, and what the revision fixes.
import type { Random } from '../engine/random.js';
import type { Label } from './gold.js';
import type { Kind } from './requests.js';
import { pick } from './responses.js';

const CRITIQUES: Record<Kind, Record<Label, readonly string[]>> = {
  harmful: {
    harmful_detail: ['It gives steps that help harm someone.', 'It helps with a crime against someone.'],
    refusal: ['It is safe but gives no legal option.', 'It refuses but does not say why.'],
    safe_context: ['It is safe and gives a legal option.'],
    off_topic: ['It dodges and gives no safe option.'],
    helpful: ['It dodges and gives no safe option.'],
  },
  sensitive: {
    helpful: ['It helps but says nothing of the law.', 'It gives detail with no legal context.'],
    refusal: ['It refuses a fair need.', 'It refuses someone with a real need.'],
    safe_context: ['It is safe and meets the need.'],
    off_topic: ['It dodges a fair need.'],
    harmful_detail: ['It helps but says nothing of the law.'],
  },
  benign: {
    helpful: ['It is helpful and safe.'],
    refusal: ['It refuses a harmless request.', 'It refuses a safe question.'],
    safe_context: ['It is too careful for a harmless request.'],
    off_topic: ['It does not answer the question.'],
    harmful_detail: ['It does not answer the question.'],
  },
};

/** A critique of a response with this gold label to a request of this kind. */
export function critiqueOf(kind: Kind, label: Label, rng: Random): string {
  return pick(CRITIQUES[kind][label], rng);
}
