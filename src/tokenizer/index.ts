// Public entry of the tokenizer package: Hugging Face tokenizer.json loading, encoding/decoding, chat templates
// with assistant masks, and byte-level BPE training.

export { Tokenizer } from './tokenizer.js';
export type { EncodeOptions, DecodeOptions, ChatTemplateOptions, AssistantMaskResult } from './tokenizer.js';
export type { Encoding } from './post-processors.js';
export type { AddedToken } from './added-tokens.js';
export type { ChatMessage } from './chat-template.js';
export { ChatTemplateError, renderChat, renderChatWithAssistantSpans, hasGenerationMarkers } from './chat-template.js';
export { trainByteLevelBPE } from './trainer.js';
export type { TrainByteLevelBPEOptions } from './trainer.js';
export { BPEModel } from './bpe.js';
export { TokenizerError, TokenizerFormatError } from './errors.js';
export { RegexTranslationError, translateOniguruma, compileOniguruma } from './regex.js';
export { BYTE_TO_CHAR, CHAR_TO_BYTE, byteLevelAlphabet } from './unicode.js';

import { Tokenizer } from './tokenizer.js';
/** Loads tokenizer.json, tokenizer_config.json and chat_template.jinja from a model directory. */
export function fromPretrained(dir: string): Tokenizer {
  return Tokenizer.fromPretrained(dir);
}
