// A generated corpus for the offline quickstart: short product and place reviews with positive, negative and
// neutral phrases, so a tiny model can learn the language in seconds and a sentiment judge has something to
// prefer. Deterministic for a seed.
import { Random } from '../engine/random.js';

const SUBJECTS = [
  'the hotel',
  'this phone',
  'the movie',
  'our waiter',
  'the service',
  'the book',
  'this laptop',
  'the pizza',
  'the concert',
  'the garden',
  'the train',
  'the coffee',
  'this game',
  'the museum',
  'the beach',
  'the app',
];
const POSITIVE = ['was great', 'is wonderful', 'made me happy', 'was excellent', 'is amazing', 'was fun', 'is perfect', 'was lovely', 'is brilliant', 'was a joy', 'is awesome', 'was superb'];
const NEGATIVE = ['was terrible', 'is awful', 'made me sad', 'was boring', 'is bad', 'was a mess', 'is horrible', 'was disappointing', 'is broken', 'was ugly', 'is useless', 'was dreadful'];
const NEUTRAL = ['arrived on tuesday', 'is blue', 'has two doors', 'was on the left', 'is near the station', 'opens at nine', 'came in a box', 'is made of wood', 'was in the city', 'has a long name'];
const OPENERS = ['I think', 'Honestly,', 'Overall', 'In short,', 'We felt'];
const JOINERS = ['and', 'but', 'so', 'because'];

interface Review {
  subject: string;
  text: string;
}

function pick<T>(xs: readonly T[], rng: Random): T {
  return xs[rng.int(xs.length)]!;
}

function phrase(rng: Random): string {
  const r = rng.uniform();
  return r < 0.4 ? pick(POSITIVE, rng) : r < 0.8 ? pick(NEGATIVE, rng) : pick(NEUTRAL, rng);
}

/** One review sentence about a subject: `{opener} {subject} {phrase} {joiner} it {phrase}.` (parts optional). */
function reviewSentence(subject: string, rng: Random): string {
  let s = `${rng.uniform() < 0.4 ? pick(OPENERS, rng) + ' ' : ''}${subject} ${phrase(rng)}`;
  if (rng.uniform() < 0.5) s += ` ${pick(JOINERS, rng)} it ${phrase(rng)}`;
  return s + '.';
}

export function reviewCorpus(n: number, seed = 0): Review[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => {
    const subject = pick(SUBJECTS, rng);
    return { subject, text: reviewSentence(subject, rng) };
  });
}

/** The prompt the quickstart's policy completes, and the subjects it is asked about. */
export function reviewPrompt(subject: string): string {
  return `Review of ${subject}:`;
}

export const REVIEW_SUBJECTS: readonly string[] = SUBJECTS;
