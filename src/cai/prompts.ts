// The conversations Constitutional AI asks a model to continue, as turns of one conversation (Bai et al. 2022):
// the request and the first reply, then a critique request with the model's critique, then a revision request
// with the model's revision; and, for AI feedback, a multiple-choice question about two replies, or a rating of
// one. Worked examples from the constitution come first, as earlier turns. A TranscriptFormat turns the turns
// into the prompt text (or messages) the model reads.
import type { ChatMessage, Prompt, TranscriptFormat } from '../feedback/text-model.js';
import type { ComparisonExample, CritiqueExample, Principle } from './constitution.js';

export type Request = string | readonly ChatMessage[];

/** A request as the opening turns of the conversation. */
function requestTurns(request: Request): ChatMessage[] {
  return typeof request === 'string' ? [{ role: 'user', content: request }] : request.map((m) => ({ ...m }));
}

/** The worked critique → revision examples as turns. */
function critiqueExampleTurns(ex: readonly CritiqueExample[], p: Principle): ChatMessage[] {
  return ex.flatMap((e) => [
    { role: 'user', content: e.request },
    { role: 'assistant', content: e.response },
    { role: 'user', content: p.critique },
    { role: 'assistant', content: e.critique },
    { role: 'user', content: p.revision },
    { role: 'assistant', content: e.revision },
  ]);
}

/** The prompt for the first reply to a request. */
export function responsePrompt(format: TranscriptFormat, request: Request): Prompt {
  return format.prompt(requestTurns(request));
}

/** The prompt for a critique of `response` against the principle. */
export function critiquePrompt(format: TranscriptFormat, request: Request, response: string, p: Principle, examples: readonly CritiqueExample[] = []): Prompt {
  return format.prompt([...critiqueExampleTurns(examples, p), ...requestTurns(request), { role: 'assistant', content: response }, { role: 'user', content: p.critique }]);
}

/** The prompt for a revision, after the critique. */
export function revisionPrompt(format: TranscriptFormat, request: Request, response: string, critique: string, p: Principle, examples: readonly CritiqueExample[] = []): Prompt {
  return format.prompt([
    ...critiqueExampleTurns(examples, p),
    ...requestTurns(request),
    { role: 'assistant', content: response },
    { role: 'user', content: p.critique },
    { role: 'assistant', content: critique },
    { role: 'user', content: p.revision },
  ]);
}

/** The request as one line of text inside a question (a conversation is laid out turn by turn). */
function quoteRequest(request: Request): string {
  if (typeof request === 'string') return `Person: ${request}`;
  return request.map((m) => `${m.role === 'assistant' ? 'Assistant' : 'Person'}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`).join('\n');
}

/** The multiple-choice question: which of two replies follows the principle better. */
function comparisonQuestion(request: Request, first: string, second: string, p: Principle): string {
  return `Consider this request to an assistant.\n${quoteRequest(request)}\n${p.comparison}\nOptions:\n(A) ${first}\n(B) ${second}`;
}

const ANSWER_LEAD = 'The answer is: (';
export const COMPARISON_OPTIONS = ['A', 'B'] as const;

/** The worked comparison examples as turns (question, then the answer). */
function comparisonExampleTurns(ex: readonly ComparisonExample[], p: Principle): ChatMessage[] {
  return ex.flatMap((e) => [
    { role: 'user', content: comparisonQuestion(e.request, e.response_a, e.response_b, p) },
    { role: 'assistant', content: `${ANSWER_LEAD}${e.answer})` },
  ]);
}

/** The prompt after which the next token is the letter of the better reply. */
export function comparisonPrompt(format: TranscriptFormat, request: Request, first: string, second: string, p: Principle, examples: readonly ComparisonExample[] = []): Prompt {
  return format.choicePrompt([...comparisonExampleTurns(examples, p), { role: 'user', content: comparisonQuestion(request, first, second, p) }], ANSWER_LEAD);
}

/** Chain of thought: the prompt for the model's reasoning about the question before it answers. */
export function reasoningPrompt(format: TranscriptFormat, request: Request, first: string, second: string, p: Principle): Prompt {
  return format.prompt([{ role: 'user', content: `${comparisonQuestion(request, first, second, p)}\nThink it through step by step before you answer.` }]);
}

/** Chain of thought: after the reasoning, the prompt for the letter. */
export function reasonedChoicePrompt(format: TranscriptFormat, request: Request, first: string, second: string, p: Principle, reasoning: string): Prompt {
  return format.choicePrompt(
    [
      { role: 'user', content: `${comparisonQuestion(request, first, second, p)}\nThink it through step by step before you answer.` },
      { role: 'assistant', content: reasoning },
      { role: 'user', content: 'So which option is it, (A) or (B)?' },
    ],
    ANSWER_LEAD,
  );
}

export const RATING_OPTIONS = ['1', '2', '3', '4', '5'] as const;
const RATING_LEAD = 'The rating is: (';

/** The question for rating one reply against a principle from 1 to 5 (direct RLAIF). */
export function ratingPrompt(format: TranscriptFormat, request: Request, response: string, p: Principle): Prompt {
  const q = `Consider this request to an assistant and its reply.\n${quoteRequest(request)}\nAssistant: ${response}\nJudge the reply by this question: ${p.comparison}\nRate the reply from 1 (it does badly) to 5 (it does very well).`;
  return format.choicePrompt([{ role: 'user', content: q }], RATING_LEAD);
}
