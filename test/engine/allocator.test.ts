// The caching allocator (src/engine/tensor.ts): size classes, reuse across varying shapes, the cap relative to
// the program's own peak of live storage (not the machine), least-recently-released eviction, ALIGNKIT_CACHE_MB,
// and exact-length views of class-sized buffers. Each scenario runs in a fresh child process (the allocator's
// state is per process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Tensor, cachedBytes, emptyCache, memoryStats, sizeClass } from '../../src/engine/tensor.js';
import { Random } from '../../src/engine/random.js';

const SCENARIO = process.env.ALIGNKIT_ALLOC_SCENARIO;
const MiB = 2 ** 20;

function runChild(scenario: string, env: Record<string, string> = {}): Record<string, number> {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, ...env, ALIGNKIT_ALLOC_SCENARIO: scenario, NODE_TEST_CONTEXT: '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `scenario ${scenario} failed:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

const scenarios: Record<string, () => Record<string, number>> = {
  // A training-like loop whose tensor sizes vary from step to step (random sequence lengths).
  varying: () => {
    const rng = new Random(1);
    const keepers = [Tensor.zeros([(16 * MiB) / 4])]; // 16 MiB of "model" that stays live
    let worstTotal = 0;
    for (let step = 0; step < 200; step++) {
      const T = 40 + rng.int(60);
      const acts = Array.from({ length: 12 }, (_, i) => Tensor.empty([T, 4096 + 512 * (i % 3)])); // ~1–2 MiB each
      const st = memoryStats();
      worstTotal = Math.max(worstTotal, st.liveBytes + st.cachedBytes - st.peakLiveBytes * 1.25);
      for (const a of acts) a.dispose();
      const s2 = memoryStats();
      if (s2.cachedBytes > s2.cacheCapBytes) throw new Error(`cache ${s2.cachedBytes} over its cap ${s2.cacheCapBytes}`);
    }
    const st = memoryStats();
    keepers[0]!.dispose();
    return { ...st, worstTotal };
  },
  // Least recently released buffers go first once the fixed cap (ALIGNKIT_CACHE_MB=7) is reached.
  lru: () => {
    const mk = (n: number): Tensor => Tensor.empty([n]);
    const old = mk(MiB / 4); // 1 MiB, released first
    const mid = mk(MiB / 2); // 2 MiB
    old.dispose();
    mid.dispose();
    const cachedBefore = cachedBytes();
    const recent = mk((3 * MiB) / 4); // 3 MiB: fresh (no cached buffer fits); 1 + 2 + 3 = 6 MiB fits the cap
    recent.dispose();
    const cachedFull = cachedBytes();
    const newest = mk((7 * MiB) / 8); // 3.5 MiB, fresh: 9.5 MiB is past the cap, the oldest (1, then 2 MiB) go
    newest.dispose();
    const after = cachedBytes();
    // the 3 MiB buffer must still be there: a request of its class is served from the cache
    const before = memoryStats().reusedBytes;
    const again = mk((3 * MiB) / 4);
    const reused = memoryStats().reusedBytes - before;
    again.dispose();
    const tooBig = mk(2 * MiB); // 8 MiB > the whole cap: freed at once, never cached, evicts nothing
    tooBig.dispose();
    return { cachedBefore, cachedFull, after, reused, final: cachedBytes(), cap: memoryStats().cacheCapBytes, freed: emptyCache() };
  },
  // A request takes a cached buffer of a larger class, through a view of exactly its length.
  views: () => {
    const a = Tensor.empty([100_000]);
    a.dispose();
    const b = Tensor.zeros([90_000]); // a different class, within 1.5×: reuses a's buffer
    const ok = b.data.length === 90_000 && b.size === 90_000 && b.toArray().every((x) => x === 0) ? 1 : 0;
    const reused = memoryStats().reusedBytes;
    b.data.fill(3);
    b.dispose();
    const c = Tensor.empty([60_000]); // below 1/1.5 of the buffer: not served by it
    const fresh = memoryStats().reusedBytes === reused ? 1 : 0;
    c.dispose();
    return { ok, reused, fresh };
  },
};

if (SCENARIO) {
  process.stdout.write(JSON.stringify(scenarios[SCENARIO]!()) + '\n');
} else {
  test('size classes: at most 12.5% over the request, 8 per octave, stable', () => {
    for (const n of [16384, 16385, 20000, 65537, 1e6, 123_456_789]) {
      const c = sizeClass(n);
      assert.ok(c >= n && c <= n * 1.125, `class of ${n} is ${c}`);
      assert.equal(sizeClass(c), c);
    }
    assert.equal(sizeClass(100), 100); // small buffers are not classed (nor cached)
  });

  test('varying shapes: buffers are reused, and live + cached stays within 1.25× the peak of live storage', () => {
    const r = runChild('varying');
    assert.ok(r.reusedBytes > 10 * r.freshBytes, `reused ${r.reusedBytes} vs fresh ${r.freshBytes}: shapes that vary should still reuse buffers`);
    assert.ok(r.worstTotal <= 64 * MiB, `live + cached exceeded 1.25× the peak by ${r.worstTotal} (more than the 64 MiB floor)`);
    assert.ok(r.cacheCapBytes <= Math.max(64 * MiB, 1.25 * r.peakLiveBytes), `cap ${r.cacheCapBytes} vs peak ${r.peakLiveBytes}`);
  });

  test('ALIGNKIT_CACHE_MB caps the cache; least recently released buffers are evicted first', () => {
    const r = runChild('lru', { ALIGNKIT_CACHE_MB: '7' });
    assert.equal(r.cap, 7 * MiB);
    assert.equal(r.cachedBefore, 3 * MiB);
    assert.equal(r.cachedFull, 6 * MiB);
    assert.equal(r.after, 6.5 * MiB, 'the 1 and 2 MiB buffers (released first) should be gone, the 3 and 3.5 MiB ones kept');
    assert.equal(r.reused, 3 * MiB);
    assert.equal(r.final, 6.5 * MiB, 'a buffer larger than the whole cap is freed, and evicts nothing');
  });

  test('a cached buffer of a larger class serves a request through an exact-length view', () => {
    const r = runChild('views');
    assert.equal(r.ok, 1);
    assert.ok(r.reused > 0);
    assert.equal(r.fresh, 1);
  });
}
