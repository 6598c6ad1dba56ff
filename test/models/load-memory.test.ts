// Loading a checkpoint takes at most 1.2x the weights' float32 size in memory (peak RSS of a fresh process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const probe = new URL('./load-memory-probe.js', import.meta.url).pathname;

test('loadPretrained peak memory <= 1.2x the float32 weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-loadmem-'));
  try {
    execFileSync(process.execPath, [probe, 'write', dir]);
    const r = JSON.parse(execFileSync(process.execPath, ['--expose-gc', probe, 'load', dir], { encoding: 'utf8' }).trim()) as { before: number; peak: number; f32Bytes: number };
    const ratio = (r.peak - r.before) / r.f32Bytes;
    assert.ok(r.f32Bytes > 150e6, `the checkpoint should be sizeable, got ${r.f32Bytes} bytes`);
    assert.ok(ratio <= 1.2, `loading took ${(ratio).toFixed(3)}x the float32 weights (${((r.peak - r.before) / 2 ** 20).toFixed(0)} MiB for ${(r.f32Bytes / 2 ** 20).toFixed(0)} MiB)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
