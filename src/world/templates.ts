// The world's transcripts are written in the very format the Constitutional AI recipe prompts a plain-text model
// with (src/cai/prompts.ts rendered by PLAIN_TRANSCRIPT: `Human: …` / `Assistant: …` turns, blank lines between),
// so that `alignkit cai run` and the AI-feedback code run unchanged on the world's tiny model: it learnt the
// critique → revision and comparison formats in pretraining, on topics of their own.
//
//   chat:        Human: {request}\n\nAssistant: {response}
//   critique:    … \n\nHuman: {principle critique}\n\nAssistant: {critique}
//   revision:    … \n\nHuman: {principle revision}\n\nAssistant: {revision}
//   comparison:  Human: Consider this request … Options:\n(A) {a}\n(B) {b}\n\nAssistant: The answer is: ({A|B})
//
// A prompt function returns the text up to where the model writes (no trailing space); the written part starts
// with a space (" I can't help with that.") — as TRL's prompt/completion rows do. Every written field is one line.
import * as cai from '../cai/prompts.js';
import { PLAIN_TRANSCRIPT } from '../feedback/text-model.js';

const P = PLAIN_TRANSCRIPT;
const asText = (p: unknown): string => p as string; // the plain format always renders text
const principle = (critique: string, revision = '', comparison = '') => ({ id: 'world', critique, revision, comparison });

/** The prompt of a request: "Human: …\n\nAssistant:". */
export function chatPrompt(request: string): string {
  return asText(cai.responsePrompt(P, request));
}

/** A full exchange: the prompt and the response. */
export function chatTranscript(request: string, response: string): string {
  return `${chatPrompt(request)} ${response}`;
}

/** The transcript up to the critique: the exchange, then the critique request. */
export function critiquePrompt(request: string, response: string, critiqueRequest: string): string {
  return asText(cai.critiquePrompt(P, request, response, principle(critiqueRequest)));
}

/** The transcript up to the revision: the critique, then the revision request. */
export function revisionPrompt(request: string, response: string, critiqueRequest: string, critique: string, revisionRequest: string): string {
  return asText(cai.revisionPrompt(P, request, response, critique, principle(critiqueRequest, revisionRequest)));
}

/** A whole critique → revision transcript (one round). */
export function critiqueTranscript(request: string, response: string, critiqueRequest: string, critique: string, revisionRequest: string, revision: string): string {
  return `${revisionPrompt(request, response, critiqueRequest, critique, revisionRequest)} ${revision}`;
}

/** The comparison question up to the option letter: "… The answer is: (". */
export function comparisonPrompt(request: string, a: string, b: string, question: string): string {
  return asText(cai.comparisonPrompt(P, request, a, b, principle('', '', question)));
}

/** A whole comparison with its answer. */
export function comparisonTranscript(request: string, a: string, b: string, question: string, answer: 'A' | 'B'): string {
  return `${comparisonPrompt(request, a, b, question)}${answer})`;
}

/**
 * The first line of a generated field (what follows the field marker up to the newline), trimmed.
 * @public (scripts/world-prototype.mjs reads it through a dynamic import knip cannot follow)
 */
export function firstLine(generated: string): string {
  const i = generated.indexOf('\n');
  return (i < 0 ? generated : generated.slice(0, i)).trim();
}
