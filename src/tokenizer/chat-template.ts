// Chat templates (Jinja, from tokenizer_config.json or chat_template.jinja) rendered with @huggingface/jinja in
// the way transformers' apply_chat_template does (messages, add_generation_prompt, the special tokens of the
// config, raise_exception, continue_final_message), and the character spans of the assistant turns used for
// assistant-only loss masks: taken from `{% generation %}...{% endgeneration %}` markers when the template has
// them, otherwise found by rendering the conversation prefix by prefix.

import { Template } from '@huggingface/jinja';
import { TokenizerError } from './errors.js';

export interface ChatMessage {
  role: string;
  content?: unknown;
  [key: string]: unknown;
}

export class ChatTemplateError extends TokenizerError {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

const GEN_START = '\uE000';
const GEN_END = '\uE001';
const GENERATION_TAG = /{%-?\s*(?:end)?generation\s*-?%}/;

/** True when the template marks assistant output with {% generation %} blocks. */
function hasGenerationMarkers(template: string): boolean {
  return GENERATION_TAG.test(template);
}

/**
 * Rewrites {% generation %} / {% endgeneration %} into expressions that print marker characters, keeping the
 * whitespace handling the tags would have had as blocks (lstrip_blocks, trim_blocks, and the `-` modifiers).
 */
function markGeneration(template: string): string {
  let t = template.replace(/^[ \t]*({%-?\s*(?:end)?generation\s*-?%})/gm, '$1');
  t = t.replace(/({%-?\s*(?:end)?generation\s*-?%})\n/g, '$1');
  return t.replace(
    /(\s*){%(-?)\s*(end)?generation\s*(-?)%}(\s*)/g,
    (_m, before: string, l: string, end: string | undefined, r: string, after: string) => (l ? '' : before) + `{{ '${end ? GEN_END : GEN_START}' }}` + (r ? '' : after),
  );
}

const compiled = new Map<string, Template>();
function compile(src: string): Template {
  let t = compiled.get(src);
  if (!t) {
    try {
      t = new Template(src);
    } catch (e) {
      throw new ChatTemplateError(`cannot parse the chat template: ${(e as Error).message}`);
    }
    if (compiled.size > 64) compiled.clear();
    compiled.set(src, t);
  }
  return t;
}

function render(src: string, context: Record<string, unknown>): string {
  const t = compile(src);
  try {
    return t.render(context);
  } catch (e) {
    throw new ChatTemplateError(`the chat template failed: ${(e as Error).message}`);
  }
}

export interface RenderContext {
  /** bos_token, eos_token, ... (strings) and any extra variables. */
  variables: Record<string, unknown>;
  tools?: unknown[];
  documents?: unknown[];
}

function contextFor(messages: ChatMessage[], addGenerationPrompt: boolean, ctx: RenderContext): Record<string, unknown> {
  const c: Record<string, unknown> = { ...ctx.variables, messages, add_generation_prompt: addGenerationPrompt };
  if (ctx.tools !== undefined) c.tools = ctx.tools;
  if (ctx.documents !== undefined) c.documents = ctx.documents;
  return c;
}

/** Text of the last message, for continue_final_message. */
function finalMessageText(messages: ChatMessage[]): string {
  const last = messages[messages.length - 1];
  let c = last?.content;
  if (Array.isArray(c)) {
    const texts = c.filter((p) => p && typeof p === 'object' && (p as { type?: string }).type === 'text');
    c = texts.length ? (texts[texts.length - 1] as { text?: string }).text : undefined;
  }
  if (typeof c !== 'string') throw new ChatTemplateError('continueFinalMessage needs a final message with text content');
  return c;
}

/** Cuts the rendering right after the final message, so that generation continues it (transformers' rule). */
function continueFinal(rendered: string, messages: ChatMessage[]): string {
  const fin = finalMessageText(messages);
  const loc = rendered.lastIndexOf(fin.trim());
  if (loc < 0) throw new ChatTemplateError('continueFinalMessage: the final message does not appear in the rendered chat');
  if (rendered.slice(loc, loc + fin.trimStart().length) === fin) return rendered.slice(0, loc + fin.trimStart().length);
  return rendered.slice(0, loc + fin.trim().length);
}

interface RenderOptions {
  addGenerationPrompt?: boolean;
  continueFinalMessage?: boolean;
}

/** Renders a conversation. */
export function renderChat(template: string, messages: ChatMessage[], ctx: RenderContext, opts: RenderOptions = {}): string {
  checkMessages(messages);
  if (opts.continueFinalMessage && opts.addGenerationPrompt) throw new ChatTemplateError('continueFinalMessage and addGenerationPrompt cannot both be set');
  const text = render(template, contextFor(messages, opts.addGenerationPrompt ?? false, ctx));
  return opts.continueFinalMessage ? continueFinal(text, messages) : text;
}

function checkMessages(messages: ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new ChatTemplateError('messages must be an array of {role, content} objects');
  messages.forEach((m, k) => {
    if (!m || typeof m !== 'object' || typeof m.role !== 'string') throw new ChatTemplateError(`messages[${k}] must be an object with a string "role"`);
  });
}

/**
 * Renders a conversation and returns the character spans [start, end) of the assistant turns in the text.
 * Uses {% generation %} markers if the template has them; else renders prefixes: for each assistant message i,
 * the text of messages[0..i) with the generation prompt is a prefix of the text of messages[0..i], and the
 * difference is that turn (an error is raised if the template is not prefix-consistent).
 */
export function renderChatWithAssistantSpans(template: string, messages: ChatMessage[], ctx: RenderContext, opts: RenderOptions = {}): { text: string; spans: Array<[number, number]> } {
  const text = renderChat(template, messages, ctx, opts);
  if (text.includes(GEN_START) || text.includes(GEN_END)) throw new ChatTemplateError('the conversation contains the private-use characters U+E000/U+E001, which mark assistant spans');
  if (hasGenerationMarkers(template)) {
    const marked = renderChat(markGeneration(template), messages, ctx, opts);
    const spans: Array<[number, number]> = [];
    let out = '';
    let open = -1;
    for (const ch of marked) {
      if (ch === GEN_START) {
        if (open >= 0) throw new ChatTemplateError('nested {% generation %} blocks in the chat template');
        open = out.length;
      } else if (ch === GEN_END) {
        if (open < 0) throw new ChatTemplateError('{% endgeneration %} without {% generation %} in the chat template');
        if (out.length > open) spans.push([open, out.length]);
        open = -1;
      } else out += ch;
    }
    if (open >= 0) throw new ChatTemplateError('{% generation %} without {% endgeneration %} in the chat template');
    if (out !== text) throw new ChatTemplateError('internal error: the marked rendering differs from the plain rendering');
    return { text, spans };
  }
  const spans: Array<[number, number]> = [];
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const isLast = i === messages.length - 1;
    const before = renderChat(template, messages.slice(0, i), ctx, { addGenerationPrompt: true });
    const withMsg = renderChat(template, messages.slice(0, i + 1), ctx, { continueFinalMessage: isLast && opts.continueFinalMessage });
    let start = -1;
    if (withMsg.startsWith(before)) start = before.length;
    else {
      const plain = renderChat(template, messages.slice(0, i), ctx, {});
      if (withMsg.startsWith(plain)) start = plain.length;
    }
    if (start < 0 || !text.startsWith(withMsg)) {
      throw new ChatTemplateError(
        `cannot find assistant message ${i} by rendering prefixes: the template does not render conversations prefix by prefix; ` +
          'add {% generation %}...{% endgeneration %} around assistant output in the template',
      );
    }
    if (withMsg.length > start) spans.push([start, withMsg.length]);
  });
  return { text, spans };
}
