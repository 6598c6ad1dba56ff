// Public entry of the tokenizer package: Hugging Face tokenizer.json loading, encoding/decoding, chat templates
// with assistant masks, and byte-level BPE training.

export { Tokenizer } from './tokenizer.js';
export type { ChatMessage } from './chat-template.js';
export { ChatTemplateError } from './chat-template.js';
export { trainByteLevelBPE } from './trainer.js';
export { TokenizerError, TokenizerFormatError } from './errors.js';
export { RegexTranslationError, translateOniguruma } from './regex.js';
export { byteLevelAlphabet } from './unicode.js';

import { Tokenizer } from './tokenizer.js';
/** Loads tokenizer.json, tokenizer_config.json and chat_template.jinja from a model directory. */
export function fromPretrained(dir: string): Tokenizer {
  return Tokenizer.fromPretrained(dir);
}
