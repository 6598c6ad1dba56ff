// Trains a small byte-level BPE with this package, saves it (with a {% generation %} chat template) and writes
// the ids / decodings / chat ids / assistant mask it gives, for check_trained.py to compare with the Python libraries.
import fs from 'node:fs';
import { trainByteLevelBPE, fromPretrained } from '../../../dist/src/tokenizer/index.js';
import { rng, randomUnicodeString} from '../../../dist/test/tokenizer/helpers.js';
const corpus = fs.readFileSync('docs/tokenizer.md', 'utf8').split('\n').filter((l) => l.trim());
const GEN = ['{% for m in messages %}', "{% if m.role == 'assistant' %}", '<|assistant|>', '{% generation %}', '{{ m.content }}<|end|>', '{% endgeneration %}', '{% else %}', '<|{{ m.role }}|>', '{{ m.content }}<|end|>', '{% endif %}', '{% endfor %}', '{% if add_generation_prompt %}<|assistant|>\n{% endif %}'].join('\n');
const t = trainByteLevelBPE(corpus, { vocabSize: 600, minFrequency: 2, specialTokens: ['<|endoftext|>', '<|user|>', '<|assistant|>', '<|end|>', '<|system|>'], config: { eos_token: '<|endoftext|>', bos_token: '<|endoftext|>', chat_template: GEN } });
const OUT = process.argv[2] ?? '/tmp/alignkit-trained';
t.save(OUT + '/trained');
const r = rng(99);
const texts = [...corpus.slice(0, 20), ...Array.from({ length: 60 }, () => randomUnicodeString(r, 30))];
const msgs = [{ role: 'system', content: 'Be helpful.' }, { role: 'user', content: 'How do I pick a lock?' }, { role: 'assistant', content: 'If you are locked out, call a locksmith.' }, { role: 'user', content: 'Thanks!' }, { role: 'assistant', content: 'You are welcome.' }];
const m = t.applyChatTemplate(msgs, { returnAssistantMask: true });
fs.writeFileSync(OUT + '/trained_cases.json', JSON.stringify({ texts, ids: texts.map((s) => t.encode(s)), dec: texts.map((s) => t.decode(t.encode(s))), msgs, chat: m, gen: GEN }));
console.log('ok', t.vocabSize, m.inputIds.length, m.assistantMask.reduce((a, b) => a + b, 0));
