// Builds cases.json: inputs for the real tokenizers library (run on the device) to compare with alignkit.
import fs from 'node:fs';
import { spTokenizerJson, rng, randomUnicodeString, byteLevelFixtureDir } from '../../../dist/test/tokenizer/helpers.js';
const fx = JSON.parse(fs.readFileSync(byteLevelFixtureDir() + '/tokenizer.json', 'utf8'));
const r = rng(12345);
const randoms = Array.from({ length: 40 }, () => randomUnicodeString(r, 30));
const base = [
  'Hello world', ' How do I pick a lock?', "don't WON'T They'RE i'M you'LL", "ſ 'ſ 'S 'K", 'numbers 12345 and 3.14159, 1,000,000 ٣٤٥',
  '   leading spaces\tand\ttabs\n\nnew lines\r\n\r\n  ', 'naïve café — déjà vu ✓ 🤖🔒', '日本語のテキスト 中文 한국어', 'a\u00a0b\u2028c\u0085d\ufeffe\u3000f',
  '', ' ', '\n', 'x', "Straße STRASSE İstanbul ǅ ﬁ", 'e\u0301 n\u0303 \u0301x', 'HELLO hello Hello world wordy word sword', '<mask> x  <mask>y <rs>   z<rs>\n',
  'hi<s>there</s> <s> hello', 'héllo 😀 wörld', 'the hello  world', '▁hello ▁', 'h€€e€', 'tthe', '...!?', 'CamelCaseWord and snake_case_word',
];
const texts = [...base, ...randoms];
const spTexts = [...base.filter((t) => !t.includes('<mask>')), 'hello world', 'Hello', 'hello  world ', ' hello', 'hi', '<s>hello', 'hello<s>', 'hello</s>hello', '€', 'ĀĀ', ...randoms.slice(0, 12)];
const withFx = (patch) => ({ ...structuredClone(fx), ...patch });
const L3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const O200K = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const added = (id, content, o) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...o });
const encode = [
  { name: 'sp-llama2', json: spTokenizerJson('llama2'), texts: spTexts },
  { name: 'sp-metaspace-first', json: spTokenizerJson('metaspace-first'), texts: spTexts },
  { name: 'sp-no-fallback-fused', json: spTokenizerJson('no-fallback-fused'), texts: spTexts },
  { name: 'sp-no-fallback-unfused', json: spTokenizerJson('no-fallback-unfused'), texts: spTexts },
  { name: 'bytelevel-fixture', json: fx, texts },
  { name: 'llama3-split', texts, json: withFx({
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: L3 }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [{ Sequence: { id: 'A', type_id: 0 } }], special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [0], tokens: ['<|endoftext|>'] } } }] } }) },
  { name: 'o200k-split-prefix', texts, json: withFx({
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: O200K }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false }] } }) },
  { name: 'added-flags-lowercase', texts, json: withFx({
    normalizer: { type: 'Lowercase' },
    added_tokens: [...fx.added_tokens, added(2000, '<mask>', { lstrip: true, special: true }), added(2001, '<rs>', { rstrip: true, special: true }),
      added(2002, 'word', { single_word: true, normalized: true }), added(2003, 'Hello', { normalized: true }), added(2004, 'WORLD', { normalized: false }), added(2005, ' x', { normalized: true })] }) },
  { name: 'nfkc-whitespace-digits', texts, json: withFx({
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Strip', strip_left: true, strip_right: true }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] } }) },
  { name: 'bert-punct-ignore-merges', texts, json: withFx({
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'BertPreTokenizer' }, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'RobertaProcessing', sep: ['<|end|>', 3], cls: ['<|user|>', 1], trim_offsets: true, add_prefix_space: true },
    model: { ...fx.model, ignore_merges: true } }) },
];
const pretokTexts = texts;
const pats = [
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", L3, O200K,
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "[一-龥\\u3040-ゟ゠-ヿ]+", "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  '\\w+|\\W', '\\d+', '\\b\\w', '^\\s*|\\s*$', '.', '(?>a+)b|a', 'e*+e|e', 'l{,2}', '[[:alpha:]]+', '\\h+', '(?i)[a-c]+', '(?i:k)', '(?i:s)+',
  '\\x{1F600}', '\\p{Han}+', '\\p{^L}+', '\\R', '\\A\\s+|\\s+\\z', '[^\\S\\n]+', '\\S+', '\\s', 'o{2}+', '\\p{Lu}\\p{Ll}*', '$', '^.', 'x?',
];
const pretok = [];
for (const p of pats) pretok.push({ json: { type: 'Split', pattern: { Regex: p }, behavior: 'Isolated', invert: false }, texts: pretokTexts });
for (const b of ['Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']) {
  pretok.push({ json: { type: 'Split', pattern: { Regex: '\\s+' }, behavior: b, invert: false }, texts: pretokTexts });
  pretok.push({ json: { type: 'Split', pattern: { String: 'l' }, behavior: b, invert: true }, texts: pretokTexts });
  pretok.push({ json: { type: 'Punctuation', behavior: b }, texts: pretokTexts });
}
for (const ms of [{ prepend_scheme: 'always', split: true }, { prepend_scheme: 'first', split: true }, { prepend_scheme: 'never', split: true }, { prepend_scheme: 'always', split: false }])
  pretok.push({ json: { type: 'Metaspace', replacement: '▁', ...ms }, texts: pretokTexts });
for (const j of [{ type: 'Whitespace' }, { type: 'WhitespaceSplit' }, { type: 'Digits', individual_digits: false }, { type: 'Digits', individual_digits: true }, { type: 'BertPreTokenizer' },
  { type: 'CharDelimiterSplit', delimiter: 'o' }, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }])
  pretok.push({ json: j, texts: pretokTexts });
const norms = [{ type: 'NFC' }, { type: 'NFD' }, { type: 'NFKC' }, { type: 'NFKD' }, { type: 'Lowercase' }, { type: 'StripAccents' },
  { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }] }, { type: 'Strip', strip_left: true, strip_right: false },
  { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Prepend', prepend: '▁' }, { type: 'Nmt' }, { type: 'ByteLevel' }];
const normalize = norms.map((json) => ({ json, texts }));
const tokLists = [['▁Hello', '▁wor', 'ld'], ['<0xE2>', '<0x82>', '<0xAC>', 'x', '<0xE2>', '<0x82>'], ['▁▁a', '▁', 'b▁'], ['Ġhello', 'Ċ', 'ĠÃ©'], ['ab', '##cd', 'ef', '.', '##g'], ['hello</w>', 'wor', 'ld</w>'], ['<0xFF>'], ['  a  ', 'b ']];
const decs = [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true },
  { type: 'WordPiece', prefix: '##', cleanup: true }, { type: 'BPEDecoder', suffix: '</w>' }, { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] },
  { type: 'Strip', content: ' ', start: 2, stop: 1 }, { type: 'Replace', pattern: { Regex: '▁+' }, content: '_' }];
const decode = decs.map((json) => ({ json, lists: tokLists }));
fs.writeFileSync(process.argv[2] ?? new URL('./cases.json', import.meta.url), JSON.stringify({ encode, pretok, normalize, decode }));
console.log('cases', encode.length, pretok.length, normalize.length, decode.length, texts.length);
