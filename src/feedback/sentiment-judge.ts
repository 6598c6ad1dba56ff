// A programmatic judge for the quickstart's AI feedback: the AFINN-165 sentiment lexicon (the `sentiment`
// package) scores a response; the more positive of two responses is preferred. It stands where a person (the
// labeling app) or an AI feedback model would, so the RLHF/RLAIF pipeline runs offline end to end.
import Sentiment from 'sentiment';

const analyzer = new Sentiment();

/** AFINN score of a text: the sum of its words' valences (positive = favourable). */
export function sentimentScore(text: string): number {
  return analyzer.analyze(text).score;
}
