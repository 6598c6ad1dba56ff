// Dataset formats: detection of every TRL type (standard and conversational), validation errors that name
// file:line:field, skipInvalid reports, implicit prompt extraction, JSONL/JSON-array reading details.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, checkDataset, detectFormat, extractPrompt, formatReport, loadDataset, loadSftDataset, readJsonl, arrayElementLines, type DataErrorCode } from '../../src/data/index.js';
import { fixtureTokenizer, tempDir, writeJsonl } from './helpers.js';

const u = (content: string) => ({ role: 'user', content });
const a = (content: string) => ({ role: 'assistant', content });

test('detectFormat: each TRL type, standard and conversational', () => {
  const cases: Array<[Record<string, unknown>, string, boolean, boolean]> = [
    [{ text: 'The sky is blue.' }, 'language_modeling', false, false],
    [{ messages: [u('Sky?'), a('Blue.')] }, 'language_modeling', true, false],
    [{ prompt: 'The sky is' }, 'prompt_only', false, false],
    [{ prompt: [u('Sky?')] }, 'prompt_only', true, false],
    [{ prompt: 'The sky is', completion: ' blue.' }, 'prompt_completion', false, false],
    [{ prompt: [u('Sky?')], completion: [a('Blue.')] }, 'prompt_completion', true, false],
    [{ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' }, 'preference', false, false],
    [{ prompt: [u('Sky?')], chosen: [a('Blue.')], rejected: [a('Green.')] }, 'preference', true, false],
    [{ chosen: 'The sky is blue.', rejected: 'The sky is green.' }, 'preference', false, true],
    [{ chosen: [u('Sky?'), a('Blue.')], rejected: [u('Sky?'), a('Green.')] }, 'preference', true, true],
    // extra columns are ignored
    [{ prompt: 'p', completion: 'c', id: 7, meta: { x: 1 } }, 'prompt_completion', false, false],
  ];
  for (const [rec, type, conv, implicit] of cases) {
    assert.deepEqual(detectFormat(rec), { type, conversational: conv, implicitPrompt: implicit }, JSON.stringify(rec));
  }
  assert.deepEqual(detectFormat({ content: 'x' }, undefined, { textField: 'content' }), { type: 'language_modeling', conversational: false, implicitPrompt: false });
});

test('detectFormat: refuses unknown, ambiguous and unpaired column sets with the reason', () => {
  const where = { file: 'd.jsonl', line: 3 };
  const bad: Array<[unknown, RegExp]> = [
    [{ foo: 1 }, /^d\.jsonl:3: cannot tell the dataset format from no known column \(has: foo\)/],
    [{ text: 'a', prompt: 'b' }, /^d\.jsonl:3: cannot tell the dataset format from columns text, prompt/],
    [{ prompt: 'a', chosen: 'b' }, /columns prompt, chosen/],
    [{ prompt: 'a', completion: 'b', label: true }, /^d\.jsonl:3: label: unpaired preference data .* is not supported/],
    [[1, 2], /^d\.jsonl:3: expected a JSON object .* got an array/],
    [{ prompt: 5 }, /^d\.jsonl:3: prompt: expected a string \(standard\) or a list of messages \(conversational\), got a number/],
  ];
  for (const [rec, re] of bad)
    assert.throws(
      () => detectFormat(rec, where),
      (e: unknown) => e instanceof DataError && re.test(e.message),
      JSON.stringify(rec),
    );
});

test('each validation error names file:line:field', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const good = { prompt: 'The sky is', completion: ' blue.' };
    // [bad line, code, field, message pattern]; the bad record is line 2 (after one good record)
    const cases: Array<[unknown, DataErrorCode, string, RegExp]> = [
      ['{"prompt": "x", "completion": ', 'invalid_json', '', /invalid JSON/],
      [{ prompt: 'x' }, 'missing_column', 'completion', /missing column 'completion' \(the dataset is standard prompt-completion detected from .*:1\)/],
      [{ prompt: 'x', completion: 42 }, 'wrong_type', 'completion', /expected a string \(the dataset is standard\), got a number/],
      [{ prompt: ['x'], completion: 'y' }, 'wrong_type', 'prompt', /expected a string \(the dataset is standard\), got an array/],
      [{ prompt: 'x', completion: '' }, 'empty', 'completion', /empty completion/],
      ['[1, 2]', 'not_object', '', /expected a JSON object/],
    ];
    for (const [k, [bad, code, field, re]] of cases.entries()) {
      const path = writeJsonl(join(dir, `e${k}.jsonl`), [good, bad, good]);
      await assert.rejects(checkDataset(path), (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.equal(e.file, path);
        assert.equal(e.line, 2);
        assert.equal(e.field, field);
        assert.equal(e.code, code);
        assert.ok(e.message.startsWith(`${path}:2: ${field ? `${field}: ` : ''}`), e.message);
        assert.match(e.message, re);
        return true;
      });
    }
    // preference and conversational errors
    const pref = { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' };
    const conv = { prompt: [u('Sky?')], completion: [a('Blue.')] };
    const more: Array<[unknown, unknown, DataErrorCode, string, RegExp]> = [
      [pref, { prompt: 'The sky is', chosen: ' blue.', rejected: ' blue.' }, 'identical_pair', 'rejected', /chosen and rejected are identical/],
      [pref, { prompt: 'The sky is', chosen: '', rejected: ' x' }, 'empty', 'chosen', /empty chosen completion/],
      [
        conv,
        { prompt: [u('Sky?')], completion: [{ role: 'robot', content: 'Blue.' }] },
        'bad_message',
        'completion[0].role',
        /unknown role "robot" \(expected one of system, developer, user, assistant/,
      ],
      [conv, { prompt: [{ content: 'Sky?' }], completion: [a('Blue.')] }, 'bad_message', 'prompt[0].role', /missing role/],
      [conv, { prompt: [u('Sky?'), { role: 'user', content: 5 }], completion: [a('Blue.')] }, 'bad_message', 'prompt[1].content', /expected a string \(or a list of content parts\), got a number/],
      [conv, { prompt: [u('Sky?')], completion: [{ role: 'assistant' }] }, 'bad_message', 'completion[0].content', /missing content/],
      [conv, { prompt: [u('Sky?')], completion: [] }, 'empty', 'completion', /empty list of messages/],
      [conv, { prompt: [u('Sky?')], completion: 'Blue.' }, 'wrong_type', 'completion', /expected a list of messages \(the dataset is conversational\), got a string/],
      [conv, { prompt: [u('Sky?')], completion: ['Blue.'] }, 'bad_message', 'completion[0]', /expected a message object/],
    ];
    for (const [k, [first, bad, code, field, re]] of more.entries()) {
      const path = writeJsonl(join(dir, `m${k}.jsonl`), [first, bad]);
      await assert.rejects(checkDataset(path), (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.deepEqual([e.line, e.field, e.code], [2, field, code], e.message);
        assert.ok(e.message.startsWith(`${path}:2: ${field}: `), e.message);
        assert.match(e.message, re);
        return true;
      });
    }
    // assistant messages with tool calls may have no content
    await checkDataset([{ prompt: [u('Weather?')], completion: [{ role: 'assistant', tool_calls: [{ name: 'w' }] }, { role: 'tool', content: 'sun' }, a('Sunny.')] }]);
  } finally {
    cleanup();
  }
});

test('skipInvalid counts every skipped record by reason and lists the first few', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const lines: unknown[] = [];
    const good = (i: number) => ({ prompt: `p${i}`, completion: ` c${i}` });
    for (let i = 1; i <= 30; i++) {
      if (i % 5 === 0) lines.push('{broken');
      else if (i % 7 === 0) lines.push({ prompt: `p${i}`, completion: '' });
      else if (i === 11) lines.push({ prompt: `p${i}` });
      else lines.push(good(i));
    }
    lines.splice(3, 0, ''); // a blank line is not a record
    const path = writeJsonl(join(dir, 'mixed.jsonl'), lines);
    await assert.rejects(checkDataset(path), /mixed\.jsonl:6: invalid JSON/); // strict: the first bad line (blank line 4 shifts it)
    const { report, format } = await checkDataset(path, { skipInvalid: true, maxReportedSkips: 3 });
    assert.equal(format.type, 'prompt_completion');
    assert.equal(report.read, 30);
    assert.equal(report.skipped, 6 + 4 + 1); // 5,10,..,30 broken; 7,14,21,28 empty; 11 missing
    assert.equal(report.kept, 30 - 11);
    assert.deepEqual(report.skippedByCode, { invalid_json: 6, empty: 4, missing_column: 1 });
    assert.deepEqual(
      report.firstSkipped.map((s) => [s.line, s.field, s.code]),
      [
        [6, '', 'invalid_json'],
        [8, 'completion', 'empty'],
        [11, '', 'invalid_json'],
      ],
    );
    assert.match(formatReport(report), /19 of 30 records kept, 11 skipped \(invalid_json 6, empty 4, missing_column 1\)\n  skipped .*mixed\.jsonl:6: invalid JSON.*\n.*\n.*\n  \.\.\. and 8 more/);
    // tokenisation failures are counted too; a dataset where nothing survives is an error even in skip mode
    const tok = fixtureTokenizer();
    const long = [
      { prompt: 'one two three four five six seven eight nine ten', completion: ' end' },
      { prompt: 'a', completion: ' b' },
    ];
    const d = await loadSftDataset(long, tok, { maxLength: 4, skipInvalid: true });
    assert.deepEqual([d.report.read, d.report.kept, d.report.skipped, d.report.skippedByCode.truncated], [2, 1, 1, 1]);
    assert.equal(d.report.firstSkipped[0].line, 1);
    await assert.rejects(loadSftDataset(long.slice(0, 1), tok, { maxLength: 4, skipInvalid: true }), /<memory>:1: completion: no usable record: all 1 records were skipped/);
    await assert.rejects(checkDataset([]), /no records/);
  } finally {
    cleanup();
  }
});

test('format given as an argument; trainers refuse formats they cannot use', async () => {
  const tok = fixtureTokenizer();
  const rows = [{ prompt: 'The sky is', completion: ' blue.' }];
  const { format } = await checkDataset(rows, { type: 'prompt_only' });
  assert.deepEqual(format, { type: 'prompt_only', conversational: false, implicitPrompt: false });
  await assert.rejects(loadSftDataset([{ prompt: 'a', chosen: 'b', rejected: 'c' }], tok), /SFT needs language-modeling or prompt-completion data, but the dataset is standard preference/);
  // a forced type checks its own columns
  await assert.rejects(checkDataset([{ text: 'x' }], { type: 'prompt_completion' }), /<memory>:1: prompt: missing column 'prompt'/);
  const d = await loadDataset([{ prompt: 'p', completion: ' c' }], tok, { type: 'prompt_only' });
  assert.equal(d.examples[0].kind, 'prompt');
});

test('implicit prompt: extract_prompt semantics for strings and conversations', async () => {
  assert.deepEqual(extractPrompt('The sky is blue.', 'The sky is green.'), { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
  assert.deepEqual(extractPrompt('abcX', 'abcY'), { prompt: 'abc', chosen: 'X', rejected: 'Y' });
  // one is a prefix of the other: the cut is one character before the end of the shorter
  assert.deepEqual(extractPrompt('Hello', 'Hello world'), { prompt: 'Hell', chosen: 'o', rejected: 'o world' });
  // never between the halves of a surrogate pair (😀 = D83D DE00, 😃 = D83D DE03); the space goes to the completions
  assert.deepEqual(extractPrompt('hi 😀', 'hi 😃'), { prompt: 'hi', chosen: ' 😀', rejected: ' 😃' });
  assert.deepEqual(extractPrompt('X', 'Y'), { prompt: '', chosen: 'X', rejected: 'Y' });
  const sys = { role: 'system', content: 'Be brief.' };
  assert.deepEqual(extractPrompt([sys, u('Sky?'), a('Blue.')], [sys, u('Sky?'), a('Green.')]), { prompt: [sys, u('Sky?')], chosen: [a('Blue.')], rejected: [a('Green.')] });
  assert.deepEqual(extractPrompt([u('Sky?'), a('Blue.')], [u('Sky?'), a('Blue.'), u('Sure?'), a('Yes.')]), {
    prompt: [u('Sky?')],
    chosen: [a('Blue.')],
    rejected: [a('Blue.'), u('Sure?'), a('Yes.')],
  });
  // through the reader: the record's prompt is the extracted one
  const { format } = await checkDataset([{ chosen: 'The sky is blue.', rejected: 'The sky is green.' }]);
  assert.equal(format.implicitPrompt, true);
  const tok = fixtureTokenizer();
  const d = await loadDataset([{ chosen: [u('Sky?'), a('Blue.')], rejected: [u('Sky?'), a('Green.')] }], tok);
  const ex = d.examples[0];
  assert.equal(ex.kind, 'preference');
  if (ex.kind === 'preference') assert.equal(tok.decode(ex.promptIds), '<|user|>\nSky?<|end|>\n<|assistant|>\n');
  await assert.rejects(checkDataset([{ chosen: [a('Blue.')], rejected: [a('Green.')] }]), /<memory>:1: chosen: chosen and rejected share no leading message/);
});

test('JSONL details (BOM, CRLF, blank lines, no final newline) and JSON arrays with element line numbers', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'crlf.jsonl');
    writeFileSync(p, '\ufeff{"text":"a"}\r\n\r\n  \r\n{"text":"b"}\r\n{"text":"c"}');
    const got: Array<[number, unknown]> = [];
    for await (const r of readJsonl(p)) got.push([r.source.line, r.value]);
    assert.deepEqual(got, [
      [1, { text: 'a' }],
      [4, { text: 'b' }],
      [5, { text: 'c' }],
    ]);

    const text = '[\n  {"text": "a [x], {y}"},\n  {"text": "b \\" ]"},\n\n  {\n    "text": ""\n  }\n]\n';
    assert.deepEqual(arrayElementLines(text), [2, 3, 5]);
    const j = join(dir, 'arr.json');
    writeFileSync(j, text);
    await assert.rejects(checkDataset(j), (e: unknown) => e instanceof DataError && e.message === `${j}:5: text: empty text`);
    const ok = join(dir, 'lines.json'); // .json holding JSON lines is read as JSONL
    writeFileSync(ok, '{"text": "a"}\n{"text": "b"}\n');
    assert.equal((await checkDataset(ok)).report.kept, 2);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '[\n {"text": "a"},\n {"text": }\n]');
    await assert.rejects(checkDataset(broken), (e: unknown) => e instanceof DataError && e.code === 'invalid_json' && e.line === 3);
    await assert.rejects(checkDataset(join(dir, 'missing.jsonl')), /cannot read \S*missing\.jsonl: no such file or folder$/);
  } finally {
    cleanup();
  }
});
