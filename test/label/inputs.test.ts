// Prompts and pairs JSONL inputs: what they accept, and errors that name the file, the line and the field.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { labelMain } from '../helpers/cli.js';
import { readPairs, readPrompts } from '../../src/label/inputs.js';
import { cleanTmp, tmp } from './helpers.js';

after(cleanTmp);

function file(text: string): string {
  const p = join(tmp(), 'in.jsonl');
  writeFileSync(p, text);
  return p;
}

test('prompts: text and chat messages, ids, blank lines, CRLF and a byte-order mark', () => {
  const p = file('\ufeff{"prompt":"Hello?","id":7}\r\n\n{"prompt":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"extra":1}\n');
  assert.deepEqual(readPrompts(p), [
    { line: 1, id: '7', prompt: 'Hello?' },
    {
      line: 3,
      id: null,
      prompt: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
    },
  ]);
});

test('prompts: each problem names the file, the line and the field', () => {
  const cases: [string, RegExp][] = [
    ['{"prompt":"ok"}\n{"prompt":"ok"}\n{"prompt": oops}\n', /in\.jsonl:3: not valid JSON/],
    ['{"prompt":"ok"}\n{"text":"no prompt"}\n', /in\.jsonl:2: field "prompt": missing/],
    ['{"prompt":42}\n', /in\.jsonl:1: field "prompt": expected text or a list of .*got a number/],
    ['{"prompt":"   "}\n', /in\.jsonl:1: field "prompt": is empty/],
    ['{"prompt":[]}\n', /in\.jsonl:1: field "prompt": the message list is empty/],
    ['{"prompt":[{"role":"user","content":"a"},{"content":"b"}]}\n', /in\.jsonl:1: field "prompt\[1\]\.role": missing/],
    ['{"prompt":[{"role":"user","content":5}]}\n', /in\.jsonl:1: field "prompt\[0\]\.content": expected a string, got a number/],
    ['{"prompt":"a","id":{"x":1}}\n', /in\.jsonl:1: field "id": expected a string or a number, got an object/],
    ['[1,2]\n', /in\.jsonl:1: expected a JSON object, got a list/],
    ['\n\n', /in\.jsonl: no prompts/],
  ];
  for (const [text, re] of cases) assert.throws(() => readPrompts(file(text)), re, text);
  assert.throws(() => readPrompts('/nonexistent/prompts.jsonl'), /\/nonexistent\/prompts\.jsonl: cannot read the prompts file \(ENOENT\)/);
});

test('pairs: responses as text or one assistant message; errors name the field', () => {
  const p = file(
    '{"prompt":"Q","response_a":"x","response_b":"y","source_a":"m1"}\n' + '{"prompt":[{"role":"user","content":"Q"}],"response_a":[{"role":"assistant","content":"x"}],"response_b":"","id":"p2"}\n',
  );
  assert.deepEqual(readPairs(p), [
    { line: 1, id: null, prompt: 'Q', responseA: 'x', responseB: 'y', sourceA: 'm1', sourceB: null },
    { line: 2, id: 'p2', prompt: [{ role: 'user', content: 'Q' }], responseA: 'x', responseB: '', sourceA: null, sourceB: null },
  ]);
  const cases: [string, RegExp][] = [
    ['{"prompt":"Q","response_a":"x"}\n', /in\.jsonl:1: field "response_b": missing/],
    ['{"prompt":"Q","response_a":"x","response_b":null}\n', /in\.jsonl:1: field "response_b": expected text or a list holding one assistant message, got null/],
    ['{"prompt":"Q","response_a":[{"role":"user","content":"x"}],"response_b":"y"}\n', /in\.jsonl:1: field "response_a\[0\]\.role": expected "assistant"/],
    ['{"prompt":"Q","response_a":"x","response_b":"y","source_b":3}\n', /in\.jsonl:1: field "source_b": expected a string/],
  ];
  for (const [text, re] of cases) assert.throws(() => readPairs(file(text)), re, text);
});

test('the CLI reports a bad input file and creates no round', async () => {
  const dir = tmp();
  const bad = file('{"prompt":"Q","response_a":"x","response_b":"y"}\n{"prompt":"Q","response_a":"x"}\n');
  const db = join(dir, 'sub', 'fb.sqlite');
  let err = '';
  const sink = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) });
  const code = await labelMain(['serve', '--pairs', bad, '--db', db, '--port', '0'], sink, sink);
  assert.equal(code, 2);
  assert.match(err, /in\.jsonl:2: field "response_b": missing/);
  assert.ok(existsSync(db), 'the database is created even so');
  let out = '';
  const sink2 = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
  assert.equal(await labelMain(['stats', '--db', db, '--json'], sink2, sink2), 0);
  assert.deepEqual(JSON.parse(out).rounds, [], 'no round was opened');
  // an option that the subcommand does not take is refused, not ignored
  err = '';
  assert.equal(await labelMain(['export', '--db', db, '--out', join(dir, 'x'), '--policy', 'p'], sink, sink), 2);
  assert.match(err, /label export: unknown option --policy/);
});
