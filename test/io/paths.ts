// Test paths for the io tests: the shared Hugging Face fixtures and throw-away temporary folders.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the first folder above this file holding package.json and binding.gyp. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** ../shared/fixtures/hf-fixtures/<name> relative to the package root. */
export function fixture(...parts: string[]): string {
  return join(repoRoot(), '..', 'shared', 'fixtures', 'hf-fixtures', ...parts);
}

/** Runs fn with a fresh temporary folder, removed afterwards. */
export function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-io-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
