// Every `npm start -- …` command in the README names a real command with options it accepts: each line is parsed
// and checked by the same dispatcher the binary uses (config files as the README shows them, flags, types, ranges,
// required options), without running it. The two commands at the top are run for real elsewhere: `compare` in
// test/compare (tiny sizes) and the test command by CI itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { COMMANDS } from '../src/cli/commands.js';
import { runCli } from '../src/cli/dispatch.js';
import { packageRoot } from '../src/engine/native.js';

const README = readFileSync(join(packageRoot(), 'README.md'), 'utf8');

/** The commands of a shell block as words: quotes kept together, `# …` comments dropped, split at `;` and `&&`. */
function commandLines(sh: string): string[][] {
  const out: string[][] = [];
  for (const line of sh.split('\n')) {
    let words: string[] = [],
      cur: string | null = null,
      q: string | null = null;
    const end = () => {
      if (cur !== null) words.push(cur);
      cur = null;
    };
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (q) {
        if (c === q) q = null;
        else cur += c;
      } else if (c === '"' || c === "'") (q = c), (cur ??= '');
      else if (c === '#' && cur === null) break;
      else if (c === ' ' || c === '\t') end();
      else if (c === ';' || (c === '&' && line[i + 1] === '&')) {
        end();
        out.push(words);
        words = [];
        if (c === '&') i++;
      } else cur = (cur ?? '') + c;
    }
    end();
    out.push(words);
  }
  return out.filter((w) => w.length);
}

const sinkText = () => {
  let t = '';
  return { s: new Writable({ write: (c, _e, cb) => ((t += String(c)), cb()) }), t: () => t };
};

test('every npm start command in the README parses and checks against the command table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-readme-'));
  try {
    // the YAML files the README shows (a block whose first line is `# NAME.yaml`)
    for (const m of README.matchAll(/```yaml\n# ([\w.-]+\.yaml)\n([\s\S]*?)```/g)) writeFileSync(join(dir, m[1]!), m[2]!);
    const lines = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => commandLines(m[1]!));
    const starts = lines.filter((w) => w[0] === 'npm' && w[1] === 'start' && w[2] === '--').map((w) => w.slice(3));
    assert.ok(starts.length >= 10, `found ${starts.length} commands`);
    const names = new Set<string>();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      for (const argv of starts) {
        const err = sinkText();
        const code = await runCli(COMMANDS, argv, { out: sinkText().s, err: err.s, checkOnly: true });
        assert.equal(code, 0, `npm start -- ${argv.join(' ')}\n${err.t()}`);
        names.add(argv[0]!);
      }
    } finally {
      process.chdir(cwd);
    }
    for (const n of ['compare', 'dpo', 'sft', 'ppo', 'reward']) assert.ok(names.has(n), `the README shows ${n}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a wrong option in a command line is caught by the same check', async () => {
  const err = sinkText();
  assert.equal(await runCli(COMMANDS, ['compare', '--seedz', '3'], { out: sinkText().s, err: err.s, checkOnly: true }), 2);
  assert.match(err.t(), /--seedz/);
});
