// The messages between the HTTP thread and the engine thread (worker.ts). Token ids and numbers only: text is
// made on the HTTP thread, which holds the tokenizers.

/** A model to serve: a name and a Hugging Face folder (full model or PEFT adapter). */
export interface ModelSpec {
  name: string;
  dir: string;
}

export interface EngineInit {
  alignkitServe: true;
  models: ModelSpec[];
  /** sequences decoded together, per base model */
  maxBatch: number;
  /** prompt tokens prefilled in one step at most (a longer prompt still goes in whole, alone) */
  prefillBudget: number;
}

/** What the engine knows of a served model once loaded. */
export interface LoadedModel {
  name: string;
  dir: string;
  /** the folder holding the weights (the base's, for an adapter) */
  baseDir: string;
  adapter: boolean;
  vocabSize: number;
  contextLength: number;
  /** EOS ids of config.json and generation_config.json */
  eosIds: number[];
  /** bytes of KV cache one token takes */
  kvBytesPerToken: number;
}

export interface SamplingParams {
  maxTokens: number;
  /** 0: greedy */
  temperature: number;
  topP: number | null;
  topK: number | null;
  /** choice i draws from its own generator, seeded from (seed, i) */
  seed: number;
  n: number;
  /** null: no log-probs; k >= 0: the chosen token's and the k most likely ones */
  logprobs: number | null;
  /** log-probs of the prompt tokens too (completions with echo) */
  promptLogprobs: boolean;
  /** generation ends after one of these ids (it is part of the output) */
  stopIds: number[];
}

export interface Job {
  id: number;
  model: string;
  prompt: number[];
  params: SamplingParams;
}

export type ToEngine =
  | { type: 'submit'; job: Job }
  | { type: 'cancel'; id: number }
  /** ends one choice (its text met a stop string) */
  | { type: 'stop'; id: number; choice: number }
  | { type: 'shutdown' };

/** One new token: [request id, choice, token, logprob (of the model's distribution), top entries or null]. */
export type TokenEvent = [id: number, choice: number, token: number, logprob: number, top: [number, number][] | null];

export type Finish = 'eos' | 'length';

export type FromEngine =
  | { type: 'ready'; models: LoadedModel[] }
  | { type: 'fatal'; error: string }
  /** per step: the requests whose prefill ran (with prompt log-probs when asked), new tokens, finished choices */
  | {
      type: 'step';
      started: number[];
      promptLogprobs: { id: number; logprobs: (number | null)[]; top: ([number, number][] | null)[] }[];
      tokens: TokenEvent[];
      done: [id: number, choice: number, finish: Finish][];
      /** sequences in the batch and requests waiting, after this step */
      active: number;
      waiting: number;
    }
  /** status 400: the job was refused; 500: running it failed */
  | { type: 'failed'; id: number; error: string; status: number }
  | { type: 'closed' };
