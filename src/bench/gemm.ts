// `alignkit bench gemm`: sgemm GFLOP/s at 1 and 2 threads on training shapes, each next to OpenBLAS
// (cblas_sgemm) measured in the same run by bench/openblas_gemm.c, compiled here at run time; and the bf16 GEMM
// (bf16 inputs, fp32 accumulation) next to PyTorch's bf16 matmul (oneDNN, bench/torch_gemm.py; OpenBLAS has no
// bf16 GEMM). The two sides never run at once: alignkit is measured with no reference process alive, the
// reference in a separate process while alignkit's pool is idle; they alternate shape by shape. Each figure is the median of several timed runs
// after warm-up; with two rounds (the default) each side keeps its better round, so a burst of load from
// elsewhere on a shared machine hurts neither side alone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { core, packageRoot } from '../engine/native.js';
import { gemm } from '../engine/ops/matmul.js';
import { Random } from '../engine/random.js';
import { row, type BenchRow } from './report.js';
import { torchMissing } from './torch.js';

type Layout = 'NN' | 'NT' | 'TN' | 'TT';

interface Shape {
  layout: Layout;
  M: number;
  N: number;
  K: number;
  threads: number;
  label?: string;
  /** bf16 inputs with fp32 accumulation (reference: PyTorch bf16 matmul) instead of fp32 (reference: OpenBLAS) */
  bf16?: boolean;
}

const CBLAS_HEADERS = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/cblas.h'];

function key(s: Shape): string {
  return `${s.layout}:${s.M}:${s.N}:${s.K}`;
}

type Measured = Map<string, number> | string;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : 0.5 * (s[n / 2 - 1]! + s[n / 2]!);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** GFLOP/s of alignkit's sgemm on each shape (median of `reps` timed runs after 2 warm-up runs). */
function measureAlignkit(shapes: readonly Shape[], reps: number): Map<Shape, number> {
  const out = new Map<Shape, number>();
  const before = core.getThreads();
  const rng = new Random(1234);
  try {
    for (const s of shapes) {
      if (core.getThreads() !== s.threads) core.setThreads(s.threads);
      const ta = s.layout[0] === 'T',
        tb = s.layout[1] === 'T';
      const A = new Float32Array(s.M * s.K),
        B = new Float32Array(s.K * s.N),
        C = new Float32Array(s.M * s.N);
      for (let i = 0; i < A.length; i++) A[i] = rng.uniform() * 2 - 1;
      for (let i = 0; i < B.length; i++) B[i] = rng.uniform() * 2 - 1;
      const lda = ta ? s.M : s.K,
        ldb = tb ? s.K : s.N;
      const times: number[] = [];
      for (let r = -2; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        gemm.sgemm(ta, tb, s.M, s.N, s.K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, s.N, s.bf16 ?? false);
        const t1 = process.hrtime.bigint();
        if (r >= 0) times.push(Number(t1 - t0) / 1e9);
      }
      out.set(s, (2 * s.M * s.N * s.K) / median(times) / 1e9);
    }
  } finally {
    if (core.getThreads() !== before) core.setThreads(before);
  }
  return out;
}

/** Compiles bench/openblas_gemm.c; returns the binary's path or why it could not. */
function buildOpenblas(dir: string): { exe: string } | { why: string } {
  if (!CBLAS_HEADERS.some((h) => existsSync(h))) return { why: 'OpenBLAS reference skipped: cblas.h not found (install libopenblas-dev)' };
  const src = join(packageRoot(), 'bench', 'openblas_gemm.c');
  if (!existsSync(src)) return { why: `OpenBLAS reference skipped: ${src} is missing` };
  const exe = join(dir, 'openblas_gemm');
  const cc = spawnSync('gcc', ['-O2', '-o', exe, src, '-lopenblas'], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    const msg = (cc.error?.message ?? cc.stderr ?? '').trim().split('\n').slice(-2).join(' ');
    return { why: `OpenBLAS reference skipped: could not build with gcc -lopenblas (install libopenblas-dev): ${msg}` };
  }
  return { exe };
}

/** GFLOP/s of OpenBLAS on each shape with `threads` threads (separate process), by shape key. */
function measureOpenblas(exe: string, shapes: readonly Shape[], threads: number, reps: number): Measured {
  const keys = [...new Set(shapes.filter((s) => s.threads === threads).map(key))];
  const out = new Map<string, number>();
  if (keys.length === 0) return out;
  const r = spawnSync(exe, [String(reps), ...keys], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) },
    timeout: 600_000,
  });
  if (r.error || r.status !== 0) return `OpenBLAS run failed: ${(r.error?.message ?? r.stderr ?? '').trim().slice(0, 200)}`;
  return parseLines(r.stdout);
}

/** GFLOP/s of PyTorch's bf16 matmul on each shape with `threads` torch threads (separate process), by shape key. */
function measureTorchBf16(shapes: readonly Shape[], threads: number, reps: number): Measured {
  const keys = [...new Set(shapes.filter((s) => s.threads === threads).map(key))];
  if (keys.length === 0) return new Map();
  const r = spawnSync('/usr/bin/python3', [join(packageRoot(), 'bench', 'torch_gemm.py'), String(reps), ...keys], {
    encoding: 'utf8',
    env: { ...process.env, THREADS: String(threads), OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: '1', DTYPE: 'bf16' },
    timeout: 600_000,
  });
  if (r.error || r.status !== 0) return `PyTorch bf16 run failed: ${(r.error?.message ?? r.stderr ?? '').trim().slice(-200)}`;
  return parseLines(r.stdout);
}

function parseLines(stdout: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const j = JSON.parse(line) as { layout: string; M: number; N: number; K: number; gflops: number };
    out.set(`${j.layout}:${j.M}:${j.N}:${j.K}`, j.gflops);
  }
  return out;
}

export async function benchGemm(opts: { json: boolean; quick?: boolean; only?: 'fp32' | 'bf16' }): Promise<BenchRow[]> {
  const quick = opts.quick ?? false;
  const reps = quick ? 5 : 9;
  const rounds = quick ? 1 : 2;
  const fp32: Shape[] = [
    { layout: 'NN', M: 1024, N: 1024, K: 1024, threads: 1 },
    { layout: 'NN', M: 1024, N: 1024, K: 1024, threads: 2 },
    { layout: 'NN', M: 1024, N: 3072, K: 768, threads: 1 },
    { layout: 'NN', M: 1024, N: 3072, K: 768, threads: 2 },
    { layout: 'NT', M: 1024, N: 3072, K: 768, threads: 2 },
    { layout: 'TN', M: 1024, N: 3072, K: 768, threads: 2 },
  ];
  const bf16: Shape[] = [
    { layout: 'NN', M: 1024, N: 1024, K: 1024, threads: 2, bf16: true },
    { layout: 'NN', M: 1024, N: 3072, K: 768, threads: 2, bf16: true },
    { layout: 'NT', M: 1024, N: 3072, K: 768, threads: 2, bf16: true },
    { layout: 'TN', M: 1024, N: 3072, K: 768, threads: 2, bf16: true },
  ];
  if (!quick) {
    fp32.push(
      { layout: 'NN', M: 1024, N: 768, K: 3072, threads: 2, label: 'MLP down-projection' },
      { layout: 'NT', M: 1024, N: 50257, K: 768, threads: 2, label: 'LM head logits' },
      { layout: 'TN', M: 50257, N: 768, K: 1024, threads: 2, label: 'LM head weight grad' },
    );
    bf16.unshift({ layout: 'NN', M: 1024, N: 1024, K: 1024, threads: 1, bf16: true });
    bf16.push(
      { layout: 'NN', M: 1024, N: 768, K: 3072, threads: 2, label: 'MLP down-projection', bf16: true },
      { layout: 'NT', M: 1024, N: 50257, K: 768, threads: 2, label: 'LM head logits', bf16: true },
      { layout: 'TN', M: 50257, N: 768, K: 1024, threads: 2, label: 'LM head weight grad', bf16: true },
    );
  }
  const shapes = [...(opts.only === 'bf16' ? [] : fp32), ...(opts.only === 'fp32' ? [] : bf16)];
  const repsFor = (s: Shape): number => (s.M * s.N * s.K > 1e10 ? Math.max(3, Math.ceil(reps / 3)) : reps);

  const dir = mkdtempSync(join(tmpdir(), 'alignkit-gemm-'));
  try {
    const built = buildOpenblas(dir);
    const ours = new Map<Shape, number>();
    const ref = new Map<Shape, number>();
    let blasNote: string | null = 'exe' in built ? null : built.why;
    const missing = torchMissing();
    let torchNote: string | null = missing ? `PyTorch reference skipped: ${missing}` : null;
    // Shape by shape, alignkit then the reference, so that each pair is measured under the same conditions.
    for (let round = 0; round < rounds; round++) {
      for (const s of shapes) {
        const n = repsFor(s);
        const g = measureAlignkit([s], n).get(s)!;
        ours.set(s, Math.max(ours.get(s) ?? 0, g));
        if (s.bf16 ? torchNote !== null : blasNote !== null || !('exe' in built)) continue;
        await sleep(20); // let the pool's workers stop spinning and sleep
        const r = s.bf16 ? measureTorchBf16([s], s.threads, n) : measureOpenblas((built as { exe: string }).exe, [s], s.threads, n);
        if (typeof r === 'string') {
          if (s.bf16) torchNote = r;
          else blasNote = r;
          continue;
        }
        const theirs = r.get(key(s));
        if (theirs !== undefined) ref.set(s, Math.max(ref.get(s) ?? 0, theirs));
      }
    }
    return shapes.map((s) => {
      const name = `${s.bf16 ? 'bf16 gemm' : 'sgemm'} ${s.layout} ${s.M}x${s.N}x${s.K}, ${s.threads} thread${s.threads > 1 ? 's' : ''}` + (s.label ? ` (${s.label})` : '');
      const skip = s.bf16 ? torchNote : blasNote;
      const theirs = skip === null ? (ref.get(s) ?? null) : null;
      const what = s.bf16 ? `PyTorch bf16 matmul (oneDNN), torch threads ${s.threads}; bf16 in, fp32 accumulation` : `OpenBLAS cblas_sgemm, OPENBLAS_NUM_THREADS=${s.threads}`;
      const note = skip ?? `${what}; median of ${repsFor(s)}` + (rounds > 1 ? `, best of ${rounds} rounds` : '');
      return row(name, ours.get(s) ?? null, theirs, 'GFLOP/s', note);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
