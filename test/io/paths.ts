// Test paths for the io tests: the shared Hugging Face fixtures and throw-away temporary folders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { packageRoot as repoRoot } from '../../src/engine/package-root.js';

/** ../shared/fixtures/hf-fixtures/<name> relative to the package root. */
export function fixture(...parts: string[]): string {
  return join(repoRoot(), 'test', 'fixtures', 'hf-fixtures', ...parts);
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
