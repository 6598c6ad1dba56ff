// `npm pack` gives a package a fresh project installs and uses: the tarball holds the compiled src (dist/src), the
// native sources and binding.gyp, and nothing else of the repository; installed from the npm cache into a
// temporary project (its install script builds the addon with node-gyp; no TypeScript at install time), a
// TypeScript program type-checks against the shipped .d.ts files and trains a tiny SFT and DPO through
// `import ... from 'alignkit'`, and the `alignkit` bin runs. About 30 s, most of it compiling the addon.
//
// The consumer project denies better-sqlite3's install script (allowScripts: false): compiling SQLite from source
// takes a minute on 2 cores and only the labeling commands open a database. Everything alignkit itself builds
// and imports is exercised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/engine/package-root.js';

const ROOT = packageRoot();
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const typesNodeVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;

/** npm's stdout; throws with npm's whole output when it fails. */
function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------------------
// The consumer's program. It uses what the package root exports today (Transformer, ops, AdamW, dpoLoss).
// TODO(trainers): when the root exports SFTTrainer/SFTConfig and DPOTrainer/DPOConfig, replace the two hand-written
// loops below (marked SFT LOOP and DPO LOOP) with `new SFTTrainer(...).train()` / `new DPOTrainer(...).train()`
// and read the losses they log; the printed JSON and the assertions in the test stay as they are.
const PROGRAM = `
import { Transformer, gpt2Config, AdamW, Tensor, tidy, noGrad, ops, nextTokenLogprobs, dpoLoss } from 'alignkit';

const T = 12;
const cfg = gpt2Config({ vocabSize: 24, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: T });

/** B rows of T tokens: each row counts up from its own start, modulo 20 (a pattern a tiny model learns fast). */
function batch(starts: number[]): Int32Array {
  const ids = new Int32Array(starts.length * T);
  starts.forEach((s, b) => { for (let t = 0; t < T; t++) ids[b * T + t] = (s + t) % 20; });
  return ids;
}

// ---- SFT LOOP: mean next-token negative log-likelihood, AdamW
const sftModel = Transformer.random(cfg, 1);
const sftOpt = new AdamW(sftModel.parameters(), { lr: 1e-2 });
const sftLosses: number[] = [];
const starts = [0, 3, 7, 11];
for (let step = 0; step < 30; step++) {
  const ids = batch(starts);
  sftLosses.push(tidy(() => {
    const lp = nextTokenLogprobs(sftModel.forward(ids, starts.length, T), ids, starts.length, T).slice(1, 0, T - 1);
    const loss = ops.neg(ops.mean(lp));
    loss.backward();
    return loss.item();
  }));
  sftOpt.stepOnce();
  sftOpt.zeroGrad();
}
sftModel.dispose();

// ---- DPO LOOP: prompt = the first 6 tokens of a counting row; chosen continues the count, rejected repeats the
// last prompt token. Policy and reference start equal (same seed), so the first loss is exactly log 2.
const P = 6;
const policy = Transformer.random(cfg, 2);
const reference = Transformer.random(cfg, 2);
const dpoOpt = new AdamW(policy.parameters(), { lr: 5e-3 });
const N = 4;
const chosen = batch([0, 4, 8, 12]);
const rejected = Int32Array.from(chosen);
for (let b = 0; b < N; b++) for (let t = P; t < T; t++) rejected[b * T + t] = chosen[b * T + P - 1]!;
// response mask over next-token positions: position t predicts token t+1, a response token when t+1 >= P
const mask = new Float32Array(N * T);
for (let b = 0; b < N; b++) for (let t = P - 1; t < T - 1; t++) mask[b * T + t] = 1;
const seqLogps = (m: Transformer, ids: Int32Array) =>
  ops.maskedSum(nextTokenLogprobs(m.forward(ids, N, T), ids, N, T), Tensor.from(mask, [N, T]), 1);
const refChosen = noGrad(() => seqLogps(reference, chosen).toArray());
const refRejected = noGrad(() => seqLogps(reference, rejected).toArray());
reference.dispose();
const dpoLosses: number[] = [];
let accuracy = 0;
for (let step = 0; step < 25; step++) {
  const r = tidy(() => {
    const out = dpoLoss(seqLogps(policy, chosen), seqLogps(policy, rejected), Tensor.from(refChosen, [N]), Tensor.from(refRejected, [N]), { beta: 0.1 });
    out.loss.backward();
    const c = out.chosenRewards.toArray(), rj = out.rejectedRewards.toArray();
    return { loss: out.loss.item(), acc: c.filter((v, i) => v > rj[i]!).length / N };
  });
  dpoLosses.push(r.loss);
  accuracy = r.acc;
  dpoOpt.stepOnce();
  dpoOpt.zeroGrad();
}
policy.dispose();

console.log(JSON.stringify({ sft: sftLosses, dpo: dpoLosses, dpoAccuracy: accuracy }));
`;

test('npm pack: the tarball holds dist/src, the native sources and binding.gyp, nothing else of the repo', { timeout: 180_000 }, () => {
  const packed = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT).replace(/^[^[]*/, '')) as { files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path).sort();
  for (const must of ['package.json', 'README.md', 'binding.gyp', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'dist/src/engine/native.js', 'native/addon.cc', 'native/gemm.cc', 'native/common.h']) {
    assert.ok(files.includes(must), `tarball lacks ${must}`);
  }
  const allowed = /^(package\.json|README\.md|LICENSE|binding\.gyp|native\/[\w-]+\.(cc|h)|dist\/src\/[\w/.-]+\.(js|d\.ts))$/;
  const stray = files.filter((f) => !allowed.test(f));
  assert.deepEqual(stray, [], 'files the package must not ship (tests, fixtures, benchmarks, sources, maps)');
  // every compiled file has its source: a stale dist (a renamed or deleted module) would ship dead code
  const stale = files.filter((f) => f.startsWith('dist/src/')).filter((f) => !existsSync(join(ROOT, f.replace(/^dist\//, '').replace(/(\.d\.ts|\.js)$/, '.ts'))));
  assert.deepEqual(stale, [], 'compiled files without a source in src/ (rebuild dist: rm -rf dist && npx tsc)');
  // every binding.gyp source is shipped
  const gyp = JSON.parse(readFileSync(join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  for (const s of gyp.targets.flatMap((t) => t.sources)) assert.ok(files.includes(s), `binding.gyp source ${s} is not in the tarball`);
});

test('a fresh project installs the tarball offline, type-checks and trains SFT and DPO through the public imports', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'alignkit-pack-'));
  try {
    const t0 = Date.now();
    // pack what `npm test` just compiled (a real `npm pack` runs prepack + prepare: rm -rf dist && tsc)
    const packOut = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT).replace(/^[^[]*/, '')) as { filename: string }[];
    const tarball = join(work, packOut[0]!.filename);
    assert.ok(existsSync(tarball), `npm pack wrote no ${tarball}`);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify(
        {
          name: 'alignkit-consumer',
          private: true,
          type: 'module',
          dependencies: { [pkg.name]: `file:${tarball}` },
          // the repository's exact @types/node (in the npm cache), for the consumer's type-check
          devDependencies: { '@types/node': typesNodeVersion },
          // as docs/install.md says (a registry install approves "alignkit" by name; a tarball is approved by its
          // file: spec); better-sqlite3 denied here to save a minute (see the top)
          allowScripts: { [`file:${tarball}`]: true, 'better-sqlite3': false },
        },
        null,
        2,
      ),
    );
    // offline from the npm cache; --strict-allow-scripts: an install script not covered by allowScripts fails
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--strict-allow-scripts'], app);
    const installed = join(app, 'node_modules', pkg.name);
    const t1 = Date.now();
    assert.ok(existsSync(join(installed, 'build', 'Release', 'alignkit.node')), 'the install script did not build the native addon');
    assert.equal(existsSync(join(installed, 'node_modules', 'typescript')) || existsSync(join(app, 'node_modules', 'typescript')), false, 'TypeScript was installed (a dev dependency)');
    assert.equal(existsSync(join(installed, 'test')) || existsSync(join(installed, 'dist', 'test')) || existsSync(join(installed, 'bench')), false);

    // the program, type-checked against the shipped declarations with the repository's TypeScript (the consumer
    // installs none), then run
    writeFileSync(join(app, 'train.ts'), PROGRAM);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        // skipLibCheck off: the shipped .d.ts files themselves must type-check in a project that has only @types/node
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, outDir: 'out', types: ['node'] },
        files: ['train.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
    assert.equal(tsc.status, 0, `tsc on the consumer program:\n${tsc.stdout}${tsc.stderr}`);
    const t2 = Date.now();
    const run = spawnSync(process.execPath, [join(app, 'out', 'train.js')], { cwd: app, encoding: 'utf8', env: { ...process.env, ALIGNKIT_THREADS: '1' } });
    assert.equal(run.status, 0, `the consumer program failed:\n${run.stdout}${run.stderr}`);
    const res = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { sft: number[]; dpo: number[]; dpoAccuracy: number };
    const t3 = Date.now();

    // SFT: starts near ln(24) (uniform over the vocabulary at the random init) and falls by more than half
    assert.ok(Math.abs(res.sft[0]! - Math.log(24)) < 0.5, `initial SFT loss ${res.sft[0]} is not near ln 24 = ${Math.log(24).toFixed(3)}`);
    assert.ok(res.sft.at(-1)! < 0.5 * res.sft[0]!, `SFT loss did not fall by half: ${res.sft[0]} → ${res.sft.at(-1)}`);
    // DPO: policy = reference at step 0, so the loss is exactly −log σ(0) = log 2; then it falls, chosen ahead
    assert.ok(Math.abs(res.dpo[0]! - Math.LN2) < 1e-6, `first DPO loss ${res.dpo[0]} != log 2`);
    assert.ok(res.dpo.at(-1)! < res.dpo[0]! - 0.05, `DPO loss did not fall: ${res.dpo[0]} → ${res.dpo.at(-1)}`);
    assert.equal(res.dpoAccuracy, 1);

    // the bin: `alignkit --help` prints the usage
    const bin = execFileSync(join(app, 'node_modules', '.bin', 'alignkit'), ['--help'], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(bin, /^alignkit .*\n[\s\S]*usage:/);
    console.log(
      `pack+install ${((t1 - t0) / 1000).toFixed(1)} s, tsc ${((t2 - t1) / 1000).toFixed(1)} s, train ${((t3 - t2) / 1000).toFixed(1)} s; ` +
        `SFT loss ${res.sft[0]!.toFixed(3)} → ${res.sft.at(-1)!.toFixed(3)}, DPO loss ${res.dpo[0]!.toFixed(4)} → ${res.dpo.at(-1)!.toFixed(4)}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
