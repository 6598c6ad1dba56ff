// Chat templates: rendering variables, raise_exception, continue_final_message, template selection, and the
// assistant-token masks (prefix rendering, and {% generation %} markers).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatTemplateError, Tokenizer, fromPretrained, type ChatMessage } from '../../src/tokenizer/index.js';
import { byteLevelFixtureDir, spTokenizerJson } from './helpers.js';

const tok = fromPretrained(byteLevelFixtureDir());
const conversation: ChatMessage[] = [
  { role: 'system', content: 'Be helpful and harmless.' },
  { role: 'user', content: 'How do I pick a lock?' },
  { role: 'assistant', content: 'If you are locked out, call a locksmith.' },
  { role: 'user', content: 'Thanks!' },
  { role: 'assistant', content: 'You are welcome.' },
];

/** The text of the masked tokens, run by run. */
function maskedRuns(t: Tokenizer, ids: number[], mask: number[]): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  ids.forEach((id, k) => {
    if (mask[k]) cur.push(id);
    else if (cur.length) {
      runs.push(t.decode(cur));
      cur = [];
    }
  });
  if (cur.length) runs.push(t.decode(cur));
  return runs;
}

test('assistant mask by prefix rendering marks exactly the tokens of each assistant turn', () => {
  const r = tok.applyChatTemplate(conversation, { returnAssistantMask: true });
  assert.equal(r.text, tok.applyChatTemplate(conversation));
  assert.deepEqual(r.inputIds, tok.encode(r.text, { addSpecialTokens: false }));
  assert.equal(r.assistantMask.length, r.inputIds.length);
  // the turn header "<|assistant|>\n" is the generation prompt, so it is not part of the assistant's output
  assert.deepEqual(maskedRuns(tok, r.inputIds, r.assistantMask), ['If you are locked out, call a locksmith.<|end|>\n', 'You are welcome.<|end|>\n']);
  const n = r.assistantMask.reduce((a, b) => a + b, 0);
  assert.equal(n, tok.encode('If you are locked out, call a locksmith.<|end|>\n').length + tok.encode('You are welcome.<|end|>\n').length);
  // with a generation prompt at the end, the prompt itself is not masked
  const g = tok.applyChatTemplate(conversation.slice(0, 4), { returnAssistantMask: true, addGenerationPrompt: true });
  assert.ok(g.text.endsWith('<|assistant|>\n'));
  assert.deepEqual(maskedRuns(tok, g.inputIds, g.assistantMask), ['If you are locked out, call a locksmith.<|end|>\n']);
});

const GENERATION_TEMPLATE = [
  '{% for m in messages %}',
  "{% if m.role == 'assistant' %}",
  '<|assistant|>',
  '{% generation %}',
  '{{ m.content }}<|end|>',
  '{% endgeneration %}',
  '{% else %}',
  '<|{{ m.role }}|>',
  '{{ m.content }}<|end|>',
  '{% endif %}',
  '{% endfor %}',
  '{% if add_generation_prompt %}<|assistant|>\n{% endif %}',
].join('\n');

test('assistant mask from {% generation %} markers (block whitespace rules kept)', () => {
  const r = tok.applyChatTemplate(conversation.slice(1), { chatTemplate: GENERATION_TEMPLATE, returnAssistantMask: true });
  // trim_blocks / lstrip_blocks: the newlines after block tags are dropped, the ones after expressions kept
  assert.equal(r.text, '<|user|>\nHow do I pick a lock?<|end|>\n<|assistant|>\nIf you are locked out, call a locksmith.<|end|>\n<|user|>\nThanks!<|end|>\n<|assistant|>\nYou are welcome.<|end|>\n');
  assert.deepEqual(maskedRuns(tok, r.inputIds, r.assistantMask), ['If you are locked out, call a locksmith.<|end|>\n', 'You are welcome.<|end|>\n']);
  // {%- generation -%} trims the whitespace around the tags like any block
  const tight =
    "{% for m in messages %}<|{{ m.role }}|>\n{% if m.role == 'assistant' %}  {%- generation -%}  {{ m.content }}  {%- endgeneration %}{% else %}{{ m.content }}{% endif %}<|end|>\n{% endfor %}";
  const t = tok.applyChatTemplate(conversation.slice(1, 3), { chatTemplate: tight, returnAssistantMask: true });
  assert.equal(t.text, '<|user|>\nHow do I pick a lock?<|end|>\n<|assistant|>\nIf you are locked out, call a locksmith.<|end|>\n');
  assert.deepEqual(maskedRuns(tok, t.inputIds, t.assistantMask), ['If you are locked out, call a locksmith.']);
});

test('special tokens of the config are template variables; tokenize adds no BOS of its own', () => {
  const tpl = '{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}';
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { chatTemplate: tpl }), '<|endoftext|>hi<|endoftext|>');
  // SentencePiece tokenizer whose post-processor adds <s>: the template's own <s> is the only one
  const sp = Tokenizer.fromJSON(spTokenizerJson('llama2'), { bos_token: '<s>', eos_token: '</s>' }, tpl);
  assert.deepEqual(sp.applyChatTemplate([{ role: 'user', content: 'hello' }], { tokenize: true }), [1, 273, 2]); // <s> ▁hello </s>
  assert.equal(sp.bosTokenId, 1);
  assert.equal(sp.eosTokenId, 2);
  // extra variables
  assert.equal(tok.applyChatTemplate([], { chatTemplate: '{{ greeting }}!', variables: { greeting: 'hey' } }), 'hey!');
});

test('raise_exception, continueFinalMessage, template selection and errors', () => {
  const strict = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be user') }}{% endif %}ok";
  assert.throws(
    () => tok.applyChatTemplate([{ role: 'system', content: 'x' }], { chatTemplate: strict }),
    (e: unknown) => e instanceof ChatTemplateError && /first message must be user/.test(e.message),
  );
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }], { chatTemplate: strict }), 'ok');

  const partial: ChatMessage[] = [
    { role: 'user', content: 'Q?' },
    { role: 'assistant', content: 'The answer is' },
  ];
  assert.equal(tok.applyChatTemplate(partial, { continueFinalMessage: true }), '<|user|>\nQ?<|end|>\n<|assistant|>\nThe answer is');
  assert.throws(() => tok.applyChatTemplate(partial, { continueFinalMessage: true, addGenerationPrompt: true }), ChatTemplateError);

  const named = Tokenizer.fromJSON(spTokenizerJson('llama2'), {
    chat_template: [
      { name: 'default', template: 'D' },
      { name: 'tool_use', template: 'T' },
    ],
  });
  assert.equal(named.applyChatTemplate([]), 'D');
  assert.equal(named.applyChatTemplate([], { tools: [{ name: 'f' }] }), 'T');
  assert.equal(named.applyChatTemplate([], { chatTemplate: 'tool_use' }), 'T');
  assert.throws(() => named.applyChatTemplate([], { chatTemplate: 'nope' }), /no chat template named "nope"/);

  const none = Tokenizer.fromJSON(spTokenizerJson('llama2'));
  assert.throws(() => none.applyChatTemplate([{ role: 'user', content: 'x' }]), /no chat template/);
  assert.throws(() => tok.applyChatTemplate([{ content: 'x' } as unknown as ChatMessage]), /messages\[0\] must be an object with a string "role"/);
  // a template that does not render conversations prefix by prefix cannot give a mask without markers
  const lastOnly = "{{ messages[-1]['content'] }}";
  assert.throws(() => tok.applyChatTemplate(conversation, { chatTemplate: lastOnly, returnAssistantMask: true }), /generation/);
});
