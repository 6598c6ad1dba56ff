// The plain-text transcript formats of the world, as functions of their parts, so Constitutional AI code can
// fill them from any constitution's strings. Every field is one line; a generated field ends at the next
// newline (or end of text), so generation of a field stops at "\n".
//
//   chat:        User: {request}\nAssistant: {response}
//   critique:    … \nCritique request: {principle critique}\nCritique: {critique}
//   revision:    … \nRevision request: {principle revision}\nRevision: {revision}
//   comparison:  User: {request}\nAnswer (A): {a}\nAnswer (B): {b}\nQuestion: {question}\nThe answer is: ({A|B})
//
// A prompt function returns the text up to where the model writes (no trailing space); the written part starts
// with a space (" I can't help with that.") — as TRL's prompt/completion rows do.

/** The prompt of a request: "User: …\nAssistant:". */
export function chatPrompt(request: string): string {
  return `User: ${request}\nAssistant:`;
}

/** A full exchange: the prompt and the response. */
export function chatTranscript(request: string, response: string): string {
  return `${chatPrompt(request)} ${response}`;
}

/** The transcript up to the critique: the exchange, then the critique request. */
export function critiquePrompt(request: string, response: string, critiqueRequest: string): string {
  return `${chatTranscript(request, response)}\nCritique request: ${critiqueRequest}\nCritique:`;
}

/** The transcript up to the revision: the critique, then the revision request. */
export function revisionPrompt(request: string, response: string, critiqueRequest: string, critique: string, revisionRequest: string): string {
  return `${critiquePrompt(request, response, critiqueRequest)} ${critique}\nRevision request: ${revisionRequest}\nRevision:`;
}

/** A whole critique → revision transcript (one round). */
export function critiqueTranscript(request: string, response: string, critiqueRequest: string, critique: string, revisionRequest: string, revision: string): string {
  return `${revisionPrompt(request, response, critiqueRequest, critique, revisionRequest)} ${revision}`;
}

/** The two options of a comparison, as written after "(": the tokens whose log-probabilities give p(A). */
export const COMPARISON_OPTIONS = ['A', 'B'] as const;

/** The comparison question up to the option letter: "… The answer is: (". */
export function comparisonPrompt(request: string, a: string, b: string, question: string): string {
  return `User: ${request}\nAnswer (A): ${a}\nAnswer (B): ${b}\nQuestion: ${question}\nThe answer is: (`;
}

/** A whole comparison with its answer. */
export function comparisonTranscript(request: string, a: string, b: string, question: string, answer: 'A' | 'B'): string {
  return `${comparisonPrompt(request, a, b, question)}${answer})`;
}

/** The first line of a generated field (what follows the field marker up to the newline), trimmed. */
export function firstLine(generated: string): string {
  const i = generated.indexOf('\n');
  return (i < 0 ? generated : generated.slice(0, i)).trim();
}
