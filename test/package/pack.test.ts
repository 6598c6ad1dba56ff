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
// The consumer program: a tokenizer and a tiny GPT-2 from scratch, SFT, then DPO from the SFT model, all through
// the package root as a user of the package writes it.
const PROGRAM = `
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DPOTrainer, SFTTrainer, newPretrained, trainByteLevelBPE } from 'alignkit';

const words = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight'];
const counts = words.slice(0, 5).map((w, i) => words.slice(i, i + 4).join(' '));
const tok = trainByteLevelBPE(counts, { vocabSize: 280, specialTokens: ['<eos>'], config: { eos_token: '<eos>', pad_token: '<eos>' } });
const model = newPretrained({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 32 }, 1);
const out = mkdtempSync(join(tmpdir(), 'consumer-'));

const sft = new SFTTrainer({
  model, processingClass: tok,
  trainDataset: counts.map((c) => ({ prompt: 'count:', completion: ' ' + c })),
  args: { output_dir: join(out, 'sft'), learning_rate: 1e-2, max_steps: 30, per_device_train_batch_size: 5, logging_steps: 1 },
});
await sft.train({ quiet: true });

// the reference is a frozen copy of the SFT model: the first DPO loss is exactly log 2
const dpo = new DPOTrainer({
  model, processingClass: tok,
  trainDataset: counts.map((c) => ({ prompt: 'count:', chosen: ' ' + c, rejected: ' ' + c.split(' ').reverse().join(' ') })),
  args: { output_dir: join(out, 'dpo'), beta: 0.1, learning_rate: 5e-3, max_steps: 25, per_device_train_batch_size: 5, logging_steps: 1 },
});
const result = await dpo.train({ quiet: true });
dpo.dispose();
sft.dispose();
console.log(JSON.stringify({ vocab: tok.vocabSize, sft: sft.history.map((h) => h.loss), dpo: dpo.history.map((h) => h.loss), dpoAccuracy: result.metrics['rewards/accuracies'] }));
`;

test('npm pack: the tarball holds dist/src, the native sources and binding.gyp, nothing else of the repo', { timeout: 180_000 }, () => {
  const packed = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT).replace(/^[^[]*/, '')) as { files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path).sort();
  for (const must of [
    'package.json',
    'README.md',
    'binding.gyp',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
    'dist/src/engine/native.js',
    'native/addon.cc',
    'native/gemm.cc',
    'native/common.h',
  ]) {
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
    const res = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { vocab: number; sft: number[]; dpo: number[]; dpoAccuracy: number };
    const t3 = Date.now();

    // SFT: starts near ln(vocab) (uniform over the vocabulary at the random init) and falls by more than half
    assert.ok(Math.abs(res.sft[0]! - Math.log(res.vocab)) < 0.5, `initial SFT loss ${res.sft[0]} is not near ln ${res.vocab} = ${Math.log(res.vocab).toFixed(3)}`);
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
