// A language model as AI feedback and Constitutional AI use it: sample continuations, and read the
// log-probabilities of a few given continuations (the options of a multiple-choice question). Two backends
// implement it: a local Hugging Face checkpoint on alignkit's engine (exact log-probabilities, batched) and any
// OpenAI-compatible server (llama.cpp, vLLM, ollama, alignkit serve, a hosted API).
import type { ChatMessage } from '../tokenizer/index.js';

export type { ChatMessage };

/** A prompt: raw text to continue, or a conversation (rendered by the model's chat template or the server). */
export type Prompt = string | readonly ChatMessage[];

export interface GenerationRequest {
  prompt: Prompt;
  maxTokens: number;
  temperature: number;
  topP?: number;
  /** the continuation ends before the first of these (not included) */
  stop?: readonly string[];
  /** per-request seed: the same request gives the same sample whatever else is in the batch */
  seed?: number;
}

export interface Generation {
  text: string;
  finishReason: 'stop' | 'length';
  /** new tokens generated */
  tokens: number;
}

/** Several options to score after one prompt. */
export interface ChoiceRequest {
  prompt: Prompt;
  options: readonly string[];
}

export interface TextModel {
  /** what the model is, for logs and transcripts (a folder, or openai:URL#name) */
  readonly id: string;
  /** whether conversations are rendered by a chat template (else use plain-text prompts) */
  readonly chat: boolean;
  /** Samples one continuation per request (batched or concurrent as the backend allows). */
  generate(requests: readonly GenerationRequest[]): Promise<Generation[]>;
  /** log p(option | prompt) for every option of every request (the log-probability of the option's text). */
  choiceLogprobs(requests: readonly ChoiceRequest[]): Promise<number[][]>;
  dispose(): void;
}

/** Probabilities of the options from their log-probabilities: the softmax over the options only. */
export function normalize(logprobs: readonly number[]): number[] {
  const m = Math.max(...logprobs);
  const e = logprobs.map((l) => Math.exp(l - m));
  const z = e.reduce((s, x) => s + x, 0);
  return e.map((x) => x / z);
}

/**
 * How a conversation becomes a prompt: with a chat template (the model's or the server's), or as a plain
 * transcript — `Human: …` / `Assistant: …` turns separated by blank lines, the format the Constitutional AI paper
 * prompts base models with.
 */
export interface TranscriptFormat {
  /** the prompt for the assistant's next turn after `turns` (which end with a user turn) */
  prompt(turns: readonly ChatMessage[]): Prompt;
  /** where an assistant turn ends in this format (stop strings) */
  readonly stop: readonly string[];
  /** the assistant turn of a multiple-choice answer begins with `lead` (e.g. `The answer is: (`) */
  choicePrompt(turns: readonly ChatMessage[], lead: string): Prompt;
}

export const PLAIN_TRANSCRIPT: TranscriptFormat = {
  prompt(turns) {
    return renderPlain(turns) + 'Assistant:';
  },
  stop: ['\n\nHuman:', '\n\nAssistant:'],
  choicePrompt(turns, lead) {
    return renderPlain(turns) + `Assistant: ${lead}`;
  },
};

function renderPlain(turns: readonly ChatMessage[]): string {
  let s = '';
  for (const t of turns) {
    const who = t.role === 'assistant' ? 'Assistant' : t.role === 'system' ? 'System' : 'Human';
    s += `${who}: ${typeof t.content === 'string' ? t.content : JSON.stringify(t.content)}\n\n`;
  }
  return s;
}

/**
 * Conversations as messages for the chat template. A multiple-choice answer is asked for as a user turn that
 * says to answer with the letter alone; the option tokens are then the first tokens of the reply.
 */
export const CHAT_TRANSCRIPT: TranscriptFormat = {
  prompt(turns) {
    return turns;
  },
  stop: [],
  choicePrompt(turns) {
    const last = turns[turns.length - 1];
    if (!last || last.role !== 'user') return turns;
    const content = `${typeof last.content === 'string' ? last.content : ''}\nAnswer with the letter of the option alone.`;
    return [...turns.slice(0, -1), { role: 'user', content }];
  },
};

/** The format a model calls for: its chat template when it has one, else the plain transcript. */
export function formatFor(model: TextModel): TranscriptFormat {
  return model.chat ? CHAT_TRANSCRIPT : PLAIN_TRANSCRIPT;
}
