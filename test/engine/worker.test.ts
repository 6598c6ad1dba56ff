// The engine runs inside a worker thread, so a server on the main thread stays responsive while a model works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

const WORK = `
  const { parentPort } = require('node:worker_threads');
  (async () => {
    const { Tensor, tidy } = await import(${JSON.stringify(new URL('../../src/engine/tensor.js', import.meta.url).href)});
    const { matmul } = await import(${JSON.stringify(new URL('../../src/engine/ops/matmul.js', import.meta.url).href)});
    const t0 = Date.now();
    let checksum = 0;
    while (Date.now() - t0 < 600) {
      checksum = tidy(() => {
        const a = Tensor.full([256, 256], 0.5);
        return matmul(a, a).toArray()[0];
      });
    }
    parentPort.postMessage(checksum);
  })();
`;

test('native work in a worker thread leaves the main event loop responsive', async () => {
  const worker = new Worker(WORK, { eval: true });
  let maxLag = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - 5);
    last = now;
  }, 5);
  const result = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  clearInterval(timer);
  await worker.terminate();
  assert.equal(result, 64); // 256 · 0.5 · 0.5
  assert.ok(maxLag < 150, `main thread timer lagged ${maxLag.toFixed(0)} ms while the worker computed`);
});
