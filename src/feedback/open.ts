// Opens the model behind a TextModel by name: a local Hugging Face folder, or `openai:<base URL>` for any
// OpenAI-compatible server (the model name, key and limits given alongside).
import { LocalTextModel, type LocalModelOptions } from './local-model.js';
import { OpenAITextModel, type OpenAIModelOptions } from './openai-model.js';
import type { TextModel } from './text-model.js';

export interface OpenModelOptions extends LocalModelOptions, Omit<OpenAIModelOptions, 'baseURL'> {}

/** `runs/sft` (a local checkpoint folder) or `openai:http://127.0.0.1:8080/v1` (a server). */
export function openTextModel(spec: string, o: OpenModelOptions = {}): TextModel {
  if (spec.startsWith('openai:')) return new OpenAITextModel({ ...o, baseURL: spec.slice('openai:'.length) });
  return LocalTextModel.load(spec, o);
}
