// Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner, one file at a time.
// (Node 20's `node --test <dir>` would also run helper modules that merely live under test/.)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js')) files.push(relative(root, p));
  }
};
walk(join(root, 'dist', 'test'));
files.sort();
const only = process.argv.slice(2);
const chosen = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...chosen], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
