// The answer styles of the world, written from a topic's clauses:
//   steps    — step-by-step compliance ("First, … Then, …"): harmful detail when the request is harmful;
//   helpful  — a short direct answer (also compliance: the risky detail for sensitive and harmful requests);
//   refusal  — a flat refusal with no reason and no alternative;
//   safe     — caution with legal context and a safe alternative ("A locksmith can open it for you. …");
//   evasive  — a content-free dodge;
//   offtopic — a fluent answer about another topic.
import type { Random } from '../engine/random.js';
import type { Request } from './requests.js';
import { COMPLY_OPENERS, EVASIONS, LEGAL_TEMPLATE, REFUSALS, SAFE_OPENERS, SAFE_TEMPLATE, SNEAKY, TOPICS, type WorldObject, fillTemplate, situationObject, topicById } from './vocabulary.js';

export type Style = 'steps' | 'helpful' | 'refusal' | 'safe' | 'evasive' | 'offtopic';
export const STYLES: readonly Style[] = ['steps', 'helpful', 'refusal', 'safe', 'evasive', 'offtopic'];

export function pick<T>(xs: readonly T[], rng: Random): T {
  return xs[rng.int(xs.length)]!;
}

/** k distinct items of xs in random order. */
function pickDistinct<T>(xs: readonly T[], k: number, rng: Random): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const sentence = (s: string): string => cap(s) + '.';

/** The clauses a compliant answer to this request is made of: how-to help for benign requests, the risky detail otherwise. */
function complianceClauses(req: Request): readonly string[] {
  const t = topicById(req.topic);
  return req.kind === 'benign' ? t.help : t.detail;
}

/** The object a request is about (for situations: the object the situation names). */
function requestObject(req: Request): WorldObject {
  const t = topicById(req.topic);
  return req.object !== null ? t.objects.find((x) => x.noun === req.object)! : situationObject(t, req.situation!);
}

/** One answer to a request in a style. */
export function respond(req: Request, style: Style, rng: Random): string {
  const t = topicById(req.topic);
  switch (style) {
    case 'steps': {
      const cs = pickDistinct(complianceClauses(req), 2, rng);
      if (req.kind === 'harmful' && rng.uniform() < 0.5) cs.unshift(pick(SNEAKY, rng));
      return cs.map((c, i) => (i === 0 ? `First, ${c}.` : `Then ${c}.`)).join(' ');
    }
    case 'helpful': {
      const cs = pickDistinct(complianceClauses(req), 1 + rng.int(2), rng);
      return [pick(COMPLY_OPENERS, rng), ...cs.map(sentence)].join(' ');
    }
    case 'refusal':
      return pick(REFUSALS, rng);
    case 'safe': {
      // legal context mostly in the template naming the object (a model can write it for any topic by copying
      // the object from the request), the safe alternative in the topic's own words or the template
      const obj = requestObject(req);
      const legal = sentence(rng.uniform() < 0.25 ? pick(t.legal, rng) : fillTemplate(LEGAL_TEMPLATE, obj));
      const safe = sentence(rng.uniform() < 0.5 ? pick(t.safe, rng) : fillTemplate(SAFE_TEMPLATE, obj));
      if (req.kind === 'harmful') return rng.uniform() < 0.5 ? `${pick(SAFE_OPENERS, rng)} ${legal} ${safe}` : `${legal} ${safe}`;
      return req.kind === 'sensitive' ? `${safe} ${legal}` : `${legal} ${safe}`;
    }
    case 'evasive':
      return pick(EVASIONS, rng);
    case 'offtopic': {
      const others = TOPICS.filter((x) => x.id !== req.topic);
      const other = pick(others, rng);
      return `${pick(COMPLY_OPENERS, rng)} ${sentence(pick(other.help, rng))}`;
    }
  }
}
