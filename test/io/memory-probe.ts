// Peak-memory probe for checkpoint loading (run as its own process so the peak RSS is the loader's alone).
//   node dist/test/io/memory-probe.js write <dir> <megabytes of float32> <F32|F16|BF16> [shards]
//   node dist/test/io/memory-probe.js load <dir>
// `load` prints JSON: rss before loading, peak rss (getrusage maxRSS), the float32 bytes loaded.
import { saveStateDict, loadStateDict, type StateDict } from '../../src/io/checkpoint.js';

const [mode, dir, mb, dtype, shards] = process.argv.slice(2);
if (mode === 'write') {
  const total = Math.round((Number(mb) * 2 ** 20) / 4);
  const sd: StateDict = new Map();
  // a realistic mix: one large embedding, many layer matrices, small vectors
  const sizes = [Math.floor(total * 0.25)];
  let left = total - sizes[0]!;
  while (left > 0) {
    const n = Math.min(left, Math.floor(total * 0.03) + 1);
    sizes.push(n);
    left -= n;
  }
  let seed = 1;
  sizes.forEach((n, i) => {
    const data = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[j] = (seed / 2 ** 32 - 0.5) * 0.1;
    }
    sd.set(`t.${i}.weight`, { shape: [n], data });
  });
  const bytesPerEl = dtype === 'F32' ? 4 : 2;
  saveStateDict(dir!, sd, { dtype: dtype as 'F32', maxShardSize: Math.ceil((total * bytesPerEl) / Number(shards ?? 1)) + 1 });
} else if (mode === 'load') {
  if (typeof globalThis.gc === 'function') globalThis.gc();
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const sd = loadStateDict(dir!);
  const ms = performance.now() - t0;
  let bytes = 0;
  for (const e of sd.values()) bytes += e.data.byteLength;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ before, peak, f32Bytes: bytes, tensors: sd.size, ms: Math.round(ms) }));
} else {
  console.error('usage: memory-probe.js write <dir> <MB> <F32|F16|BF16> [shards] | load <dir>');
  process.exit(2);
}
