// Field tables: conversion of command-line strings by type, null words only for options that may be null (and
// are not one of a choice's words), ranges, required options, "did you mean", and the help and Markdown forms.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptionError, defineConfig, f, formatHelp, markdownTable, resolveOptions } from '../../src/options/fields.js';

const T = {
  judge: f.choice(['none', 'sentiment'], 'none', 'a judge'),
  max_length: f.integer(1024, 'tokens', { min: 1, nullable: true }),
  path: f.string(null, 'a path', { nullable: true }),
  name: f.string('x', 'a name'),
  lr: f.number(5e-5, 'learning rate', { min: 0 }),
  p: f.number(1, 'mass', { min: 0, max: 1, exclusiveMin: true }),
  flag: f.boolean(false, 'a flag'),
  mods: f.list(null, 'modules', { nullable: true }),
  model: f.string('', 'the model', { required: true }),
};

test('strings from the command line are converted by the field type', () => {
  const v = resolveOptions(T, { judge: 'none', max_length: 'null', path: 'None', name: 'null', lr: '1e-3', p: '0.5', flag: 'true', mods: 'a, b', model: 'm' }, 'cfg');
  assert.deepEqual(v, { judge: 'none', max_length: null, path: null, name: 'null', lr: 1e-3, p: 0.5, flag: true, mods: ['a', 'b'], model: 'm' });
  assert.equal(resolveOptions(T, { model: 'm' }, 'cfg').max_length, 1024);
});

test('errors name the option, say what it must be and what it got', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ model: 'm', lr: -1 }, /^cfg: lr: must be a number >= 0, got -1$/],
    [{ model: 'm', p: 0 }, /^cfg: p: must be a number in \(0, 1\], got 0$/],
    [{ model: 'm', max_length: 2.5 }, /^cfg: max_length: must be an integer >= 1 \(or null\), got 2\.5$/],
    [{ model: 'm', judge: 'gold' }, /^cfg: judge: must be one of none, sentiment, got "gold"$/],
    [{ model: 'm', flag: 'yes' }, /^cfg: flag: must be true or false, got "yes"$/],
    [{ model: 'm', name: null }, /^cfg: name: must be a string, got null$/],
    [{ model: 'm', max_lenght: 5 }, /^cfg: max_lenght: unknown option \(did you mean max_length\?\)$/],
    [{}, /^cfg: model is required \(the model\)$/],
  ];
  for (const [given, re] of bad)
    assert.throws(
      () => resolveOptions(T, given, 'cfg'),
      (e: Error) => e instanceof OptionError && re.test(e.message),
      JSON.stringify(given),
    );
  assert.throws(() => resolveOptions(T, { model: 'm', fp16: true }, 'cfg', { refused: { fp16: 'not here' } }), /^OptionError: cfg: fp16: not here$/);
});

test('a config class adds cross-field checks; --help and Markdown come from the same table', () => {
  const C = defineConfig('C', T, (c, fail) => {
    if (c.flag && c.max_length === null) fail('max_length', 'flag needs max_length');
  });
  assert.throws(() => C.resolve({ model: 'm', flag: true, max_length: null }), /^OptionError: C: max_length: flag needs max_length$/);
  const help = formatHelp(T, 'kebab');
  assert.match(help, /--max-length N\s+tokens \(default 1024; >= 1\)/);
  assert.match(help, /--lr X\s+learning rate \(default 5e-5; >= 0\)/);
  assert.match(help, /--model STR\s+the model \(required\)/);
  const md = markdownTable(T);
  assert.match(md, /\| `judge` \| none \\\| sentiment \| `none` \| a judge \|/);
  assert.match(md, /\| `p` \| number in \(0, 1\] \| `1` \| mass \|/);
});
