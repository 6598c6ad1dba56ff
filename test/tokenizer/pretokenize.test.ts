// Oniguruma -> JavaScript regex translation and the pre-tokenizers / normalizers built on it. The expected splits
// are those of the tokenizers library (checked against tokenizers 0.23.2: its pre_tokenize_str / normalize_str on
// the same JSON descriptions).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer, RegexTranslationError, TokenizerFormatError, translateOniguruma } from '../../src/tokenizer/index.js';
import { buildPreTokenizer } from '../../src/tokenizer/pre-tokenizers.js';
import { buildNormalizer } from '../../src/tokenizer/normalizers.js';
import { NormalizedString } from '../../src/tokenizer/normalized.js';
import { byteLevelFixtureDir } from './helpers.js';

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const O200K =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function split(pre: unknown, text: string): string[] {
  const pt = buildPreTokenizer(pre as never)!;
  return pt.preTokenize([NormalizedString.fromOriginal(text)]).map((p) => p.text);
}
const isolated = (pattern: string) => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });

const CONTRACTIONS = "don't WON'T They'RE i'M you'LL";
const SPACES = '   leading spaces\tand\ttabs\n\nnew lines\r\n\r\n  ';
const NUMBERS = 'numbers 12345 and 3.14159, 1,000,000 ٣٤٥';
const ODD_SPACES = 'a\u00a0b\u2028c\u0085d\ufeffe\u3000f'; // NBSP, LINE SEPARATOR, NEL, BOM, IDEOGRAPHIC SPACE

test('GPT-2 pattern: case-sensitive contractions, Oniguruma \\s (U+0085 yes, U+FEFF no)', () => {
  assert.deepEqual(split(isolated(GPT2), CONTRACTIONS), ['don', "'t", ' WON', "'", 'T', ' They', "'", 'RE', ' i', "'", 'M', ' you', "'", 'LL']);
  assert.deepEqual(split(isolated(GPT2), SPACES), ['  ', ' leading', ' spaces', '\t', 'and', '\t', 'tabs', '\n', '\n', 'new', ' lines', '\r\n\r\n  ']);
  assert.deepEqual(split(isolated(GPT2), ODD_SPACES), ['a', '\u00a0', 'b', '\u2028', 'c', '\u0085', 'd', '\ufeff', 'e', '\u3000', 'f']);
  assert.deepEqual(split(isolated(GPT2), NUMBERS), ['numbers', ' 12345', ' and', ' 3', '.', '14159', ',', ' 1', ',', '000', ',', '000', ' ٣٤٥']);
});

test('Llama-3 pattern: (?i:...) contractions, digits in groups of three, newline runs', () => {
  assert.deepEqual(split(isolated(LLAMA3), CONTRACTIONS), ['don', "'t", ' WON', "'T", ' They', "'RE", ' i', "'M", ' you', "'LL"]);
  assert.deepEqual(split(isolated(LLAMA3), SPACES), ['  ', ' leading', ' spaces', '\tand', '\ttabs', '\n\n', 'new', ' lines', '\r\n\r\n', '  ']);
  assert.deepEqual(split(isolated(LLAMA3), NUMBERS), ['numbers', ' ', '123', '45', ' and', ' ', '3', '.', '141', '59', ',', ' ', '1', ',', '000', ',', '000', ' ', '٣٤٥']);
  assert.deepEqual(split(isolated(LLAMA3), ODD_SPACES), ['a', '\u00a0b', '\u2028c', '\u0085d', '\ufeffe', '\u3000f']);
});

test('GPT-4o (o200k) pattern: case-aware words with optional contraction', () => {
  assert.deepEqual(split(isolated(O200K), 'CamelCaseWord and snake_case_word'), ['Camel', 'Case', 'Word', ' and', ' snake', '_case', '_word']);
  assert.deepEqual(split(isolated(O200K), CONTRACTIONS), ["don't", " WON'T", " They'RE", " i'M", " you'LL"]);
});

test('translated constructs behave like Oniguruma', () => {
  // case-insensitive groups use Unicode simple case folding: k matches KELVIN SIGN, s matches LONG S
  assert.deepEqual(split(isolated('(?i:k)'), "ſ 'ſ 'S 'K"), ["ſ 'ſ 'S '", 'K']);
  assert.deepEqual(split(isolated('(?i:s)+'), "ſ 'ſ 'S 'K"), ['ſ', " '", 'ſ', " '", 'S', " 'K"]);
  // possessive quantifier and atomic group: no backtracking into them
  assert.deepEqual(split(isolated('e*+e|e'), 'HELLO hello Hello'), ['HELLO h', 'e', 'llo H', 'e', 'llo']);
  assert.deepEqual(split(isolated('(?>a+)b|a'), 'tabs and'), ['t', 'ab', 's ', 'a', 'nd']);
  // ^ and $ are line anchors on \n only; {,2} is {0,2}; . does not match \n; \b on Unicode word chars
  assert.deepEqual(split(isolated('^\\s*|\\s*$'), SPACES), ['   ', 'leading spaces\tand\ttabs', '\n', '\n', 'new lines', '\r\n\r\n  ']);
  assert.deepEqual(split(isolated('l{,2}'), 'Hello'), ['H', 'e', 'll', 'o']);
  assert.deepEqual(split(isolated('.'), 'a\n\nb'), ['a', '\n\n', 'b']);
  assert.deepEqual(split(isolated('\\b\\w'), 'snake_case word'), ['s', 'nake_case ', 'w', 'ord']);
  assert.deepEqual(split(isolated('\\R'), 'a\r\nb\nc'), ['a', '\r\n', 'b', '\n', 'c']);
  // no split inside a surrogate pair even for empty matches
  assert.deepEqual(split(isolated('$'), 'héllo 😀 wörld'), ['héllo 😀 wörld']);
});

test('translation output and clear errors for untranslatable patterns', () => {
  assert.equal(translateOniguruma("(?i:'s)"), '(?:\\u{27}[sS\\u{17f}])');
  assert.equal(translateOniguruma('a{,3}'), 'a{0,3}');
  assert.equal(translateOniguruma('\\p{Han}'), '\\p{sc=Han}');
  for (const [p, why] of [
    ['(a)\\1', 'unsupported escape'],
    ['\\Gx', 'unsupported escape'],
    ['[a-z&&[^aeiou]]', 'intersection'],
    ['[a[b]]', 'nested character class'],
    ['(?m:a.b)', 'inline option'],
    ['\\p{NoSuchProperty}', 'unknown Unicode property'],
    ['(?i:\\p{Lu})', 'case-insensitive'],
    ['(ab', 'unbalanced'],
    ['*a', 'nothing to repeat'],
  ]) {
    assert.throws(
      () => translateOniguruma(p),
      (e: unknown) => e instanceof RegexTranslationError && e.message.includes(why) && e.message.includes(JSON.stringify(p)),
      p,
    );
  }
  // in a tokenizer.json the error names the field
  const json = JSON.parse(readFileSync(join(byteLevelFixtureDir(), 'tokenizer.json'), 'utf8'));
  json.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '(a)\\1' }, behavior: 'Isolated', invert: false }] };
  assert.throws(
    () => Tokenizer.fromJSON(json),
    (e: unknown) => e instanceof TokenizerFormatError && e.field === 'pre_tokenizer.pretokenizers[0].pattern.Regex',
  );
});

test('split behaviors and the other pre-tokenizers', () => {
  const ws = (behavior: string) => ({ type: 'Split', pattern: { Regex: '\\s+' }, behavior, invert: false });
  const t = 'a b  c';
  assert.deepEqual(split(ws('Removed'), t), ['a', 'b', 'c']);
  assert.deepEqual(split(ws('Isolated'), t), ['a', ' ', 'b', '  ', 'c']);
  assert.deepEqual(split(ws('MergedWithPrevious'), t), ['a ', 'b  ', 'c']);
  assert.deepEqual(split(ws('MergedWithNext'), t), ['a', ' b', '  c']);
  assert.deepEqual(split(ws('Contiguous'), ' a  b '), [' ', 'a', '  ', 'b', ' ']);
  assert.deepEqual(split({ type: 'Split', pattern: { String: 'l' }, behavior: 'Removed', invert: true }, 'hello'), ['l', 'l']);
  assert.deepEqual(split({ type: 'Whitespace' }, "don't stop!"), ['don', "'", 't', 'stop', '!']);
  assert.deepEqual(split({ type: 'WhitespaceSplit' }, " don't\u3000stop! "), ["don't", 'stop!']);
  assert.deepEqual(split({ type: 'Digits', individual_digits: true }, 'a12b'), ['a', '1', '2', 'b']);
  assert.deepEqual(split({ type: 'Digits', individual_digits: false }, 'a12b3'), ['a', '12', 'b', '3']);
  assert.deepEqual(split({ type: 'Punctuation', behavior: 'Isolated' }, 'a,b.'), ['a', ',', 'b', '.']);
  assert.deepEqual(split({ type: 'BertPreTokenizer' }, 'Hi, there!'), ['Hi', ',', 'there', '!']);
  assert.deepEqual(split({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }, 'a b  c'), ['▁a', '▁b', '▁', '▁c']);
  assert.deepEqual(split({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: false }, 'a b'), ['a▁b']);
  assert.deepEqual(split({ type: 'ByteLevel', add_prefix_space: true, use_regex: true, trim_offsets: true }, 'é a'), ['ĠÃ©', 'Ġa']);
});

test('normalizers', () => {
  const norm = (n: unknown, s: string) => {
    const ns = NormalizedString.fromOriginal(s);
    buildNormalizer(n as never)!.normalize(ns);
    return ns.text;
  };
  assert.equal(norm({ type: 'NFKC' }, 'ﬁ ǅ e\u0301'), 'fi Dž é');
  assert.equal(norm({ type: 'NFD' }, 'é'), 'e\u0301');
  assert.equal(norm({ type: 'Lowercase' }, 'ΣΑΣ İ'), 'σασ i\u0307'); // per character, no final-sigma rule
  assert.equal(norm({ type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }] }, 'déjà vu'), 'deja vu');
  assert.equal(norm({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true }, 'Héllo\t中文\u0000!'), 'hello  中  文 !');
  assert.equal(norm({ type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, 'a \t\n b'), 'a b');
  assert.equal(norm({ type: 'Strip', strip_left: true, strip_right: false }, '  a  '), 'a  ');
  assert.equal(norm({ type: 'Prepend', prepend: '▁' }, 'a'), '▁a');
  assert.equal(norm({ type: 'Nmt' }, 'a\u0001b\u200bc'), 'ab c');
  // offsets survive normalization: NFKC "ﬁ" -> "fi", both characters from the ligature
  const ns = NormalizedString.fromOriginal('xﬁe\u0301');
  buildNormalizer({ type: 'NFKC' })!.normalize(ns);
  assert.equal(ns.text, 'xfié');
  assert.deepEqual(
    [0, 1, 2, 3].map((k) => ns.originalSpan(k, k + 1)),
    [
      [0, 1],
      [1, 2],
      [1, 2],
      [2, 3],
    ],
  );
});
