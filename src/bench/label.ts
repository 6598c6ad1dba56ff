// `alignkit bench label`: the labeling server under load. A real server (startServer on 127.0.0.1, its own
// database file with synchronous=FULL) serves one round of 50,000 ready-made pairs to 200 annotators, each with
// their own token. The annotators run in a worker thread (their own event loop, so the load generator never
// shares the server's), each doing what the labeling page does: GET /api/next, then POST /api/label. Two phases,
// each on a fresh database: `paced`, where every annotator labels on a schedule that adds up to --rate labels/s
// (people read before they click; the latency there is what an annotator waits), and `saturated`, where every
// annotator posts again the moment an answer arrives (the server's capacity; by Little's law its latency is about
// annotators / throughput). After each phase the labels are exported (aggregate all) and every acknowledged label
// must be in the file exactly once, with nothing else there.
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Command } from '../options/command.js';
import { f } from '../options/fields.js';
import { type BenchRow, printRows, row } from './report.js';

const OPTIONS = {
  json: f.boolean(false, 'one JSON object per row instead of a table'),
  quick: f.boolean(false, 'a smoke run: 20 annotators, 2,000 pairs, 4 s per phase (1 s warm-up)'),
  annotators: f.integer(200, 'annotators labelling at once (each with its own token)', { min: 1 }),
  pairs: f.integer(50_000, 'pairs in the round', { min: 1 }),
  rate: f.number(500, 'labels per second the annotators aim at together in the paced phase', { min: 0, exclusiveMin: true }),
  seconds: f.number(40, 'length of each phase, seconds (the warm-up included)', { min: 0, exclusiveMin: true }),
  warmup: f.number(3, 'seconds at the start of each phase left out of the figures (connections, the first claims)', { min: 0 }),
  phases: f.choice(['both', 'paced', 'saturated'], 'both', 'which phases to run'),
};

/** The issue's bars: 200 annotators on a 50k-pair round. */
const BAR_RATE = 400;
const BAR_P99_MS = 250;

interface ClientData {
  benchLabelClient: true;
  url: string;
  tokens: string[];
  seconds: number;
  warmup: number;
  /** seconds between one annotator's labels (0: as fast as the server answers) */
  period: number;
}

interface ClientResult {
  /** latencies of the requests started after the warm-up, ms */
  next: number[];
  label: number[];
  /** each annotator's first GET /api/next (a new connection, their first claim), ms */
  first: number[];
  /** labels acknowledged for posts started after the warm-up */
  counted: number;
  /** seconds from the end of the warm-up to the last answer */
  measuredSeconds: number;
  acked: { labelId: number; annotator: number }[];
  errors: Record<string, number>;
  /** label posts that got no answer (connection lost) */
  unanswered: number;
  /** annotators that found nothing left to label */
  exhausted: number;
  elapsedMs: number;
}

interface PhaseResult {
  phase: 'paced' | 'saturated';
  annotators: number;
  pairs: number;
  labelsPerSecond: number;
  firstNext: { p50: number; max: number };
  offered: number | null;
  next: { p50: number; p99: number; n: number };
  label: { p50: number; p99: number; n: number };
  acked: number;
  exportedOnce: number;
  problems: string[];
  errors: Record<string, number>;
  serverLoopBusy: number;
  /** writes per commit (group commit), mean and largest */
  perCommit: number;
  largestCommit: number;
  setupSeconds: number;
}

function percentile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

// ------------------------------------------------------------------ the annotators (worker thread)

async function clients(d: ClientData): Promise<ClientResult> {
  const http = await import('node:http');
  const base = new URL(d.url);
  // one kept-alive connection per annotator, as each person's browser has its own
  const agents = d.tokens.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const call = (agent: InstanceType<typeof http.Agent>, method: 'GET' | 'POST', path: string, token: string, body?: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { Authorization: `Bearer ${token}` };
      if (body !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      const req = http.request({ host: base.hostname, port: base.port, path, method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const out: ClientResult = { next: [], label: [], first: [], counted: 0, measuredSeconds: 0, acked: [], errors: {}, unanswered: 0, exhausted: 0, elapsedMs: 0 };
  const fail = (what: string) => (out.errors[what] = (out.errors[what] ?? 0) + 1);
  const start = performance.now();
  const deadline = start + d.seconds * 1000;
  const measureFrom = start + Math.min(d.warmup, d.seconds / 2) * 1000;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const one = async (k: number): Promise<void> => {
    const token = d.tokens[k]!,
      agent = agents[k]!;
    // paced: annotator k starts at a random offset within the period and then keeps to its schedule
    let due = start + Math.random() * d.period * 1000;
    for (let i = 0; ; i++) {
      if (d.period > 0) {
        if (due >= deadline) return;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        due += d.period * 1000;
      }
      if (performance.now() >= deadline) return;
      const t0 = performance.now();
      let n;
      try {
        n = await call(agent, 'GET', '/api/next', token);
      } catch (e) {
        fail(`GET /api/next ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        continue;
      }
      if (i === 0) out.first.push(performance.now() - t0);
      if (t0 >= measureFrom) out.next.push(performance.now() - t0);
      if (n.status !== 200) {
        fail(`GET /api/next ${n.status}`);
        await sleep(50);
        continue;
      }
      const item = (JSON.parse(n.text) as { item: { assignmentId: number } | null }).item;
      if (!item) {
        out.exhausted++;
        return;
      }
      const body = JSON.stringify({ assignmentId: item.assignmentId, choice: (k + i) % 2 ? 'left' : 'right' });
      const t1 = performance.now();
      let l;
      try {
        l = await call(agent, 'POST', '/api/label', token, body);
      } catch (e) {
        // sent, no answer: the label may or may not be stored (the export check allows it, counted)
        fail(`POST /api/label ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        out.unanswered++;
        continue;
      }
      if (t1 >= measureFrom) out.label.push(performance.now() - t1);
      if (l.status === 200) {
        out.acked.push({ labelId: (JSON.parse(l.text) as { labelId: number }).labelId, annotator: k });
        if (t1 >= measureFrom) out.counted++;
      } else fail(`POST /api/label ${l.status}`);
    }
  };
  await Promise.all(d.tokens.map((_, k) => one(k)));
  out.elapsedMs = performance.now() - start;
  out.measuredSeconds = (performance.now() - measureFrom) / 1000;
  for (const a of agents) a.destroy();
  return out;
}

if (!isMainThread && (workerData as Partial<ClientData> | null)?.benchLabelClient) {
  clients(workerData as ClientData).then(
    (r) => parentPort!.postMessage(r),
    (e: unknown) => parentPort!.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
}

function runClients(d: ClientData): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: d });
    w.once('message', (m: ClientResult | { error: string }) => {
      void w.terminate();
      if ('error' in m) reject(new Error(`bench label: the annotators' thread failed: ${m.error}`));
      else resolve(m);
    });
    w.once('error', reject);
  });
}

// ------------------------------------------------------------------ one phase (main thread: the server)

async function phase(kind: 'paced' | 'saturated', o: { annotators: number; pairs: number; rate: number; seconds: number; warmup: number }, log: (s: string) => void): Promise<PhaseResult> {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { FeedbackDB } = await import('../label/db.js');
  const { exportPreferences } = await import('../label/export.js');
  const { startServer } = await import('../label/server.js');
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-label-'));
  const t0 = performance.now();
  const store = FeedbackDB.open(join(dir, 'feedback.sqlite'));
  try {
    const tokens: string[] = [];
    const names: string[] = [];
    for (let k = 0; k < o.annotators; k++) {
      names.push(`annotator-${k + 1}`);
      tokens.push(store.addAnnotator(names[k]!).token);
    }
    const filler = ' The answer goes on for a while, as model responses do, so that rows have a realistic size.'.repeat(3);
    store.openRound({
      source: 'pairs',
      input: join(dir, 'pairs.jsonl'),
      pairs: Array.from({ length: o.pairs }, (_, k) => ({
        line: k + 1,
        id: `p${k}`,
        prompt: `Question ${k}: which of the two answers is better, and why?`,
        responseA: `Answer A to question ${k}.${filler}`,
        responseB: `Answer B to question ${k}.${filler}`,
        sourceA: null,
        sourceB: null,
      })),
    });
    // as `label serve` finds a database that `label round` filled and closed: the round's rows in the file, the
    // write-ahead log empty (else the first commit under load would copy the whole round into the file)
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    const setupSeconds = (performance.now() - t0) / 1000;
    const server = await startServer({ store, port: 0 });
    const period = kind === 'paced' ? o.annotators / o.rate : 0;
    log(
      `bench label: ${kind}: ${o.annotators} annotators, ${o.pairs} pairs${kind === 'paced' ? `, aiming at ${o.rate} labels/s` : ', no pauses'}, ${o.seconds} s, the first ${Math.min(o.warmup, o.seconds / 2)} s a warm-up (set-up ${setupSeconds.toFixed(1)} s)`,
    );
    let r: ClientResult;
    const elu0 = performance.eventLoopUtilization();
    try {
      r = await runClients({ benchLabelClient: true, url: server.url, tokens, seconds: o.seconds, warmup: o.warmup, period });
    } finally {
      await server.close();
    }
    const busy = performance.eventLoopUtilization(elu0).utilization;
    const { batches, writes, largest } = server.commits;
    // every acknowledged label exactly once in the export, and nothing else there
    const out = join(dir, 'prefs.jsonl');
    const counts = exportPreferences(store, out, undefined, 'all');
    const byLabel = new Map(store.exportRows().map((x) => [x.labelId, x]));
    const seen = new Map<string, number>();
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      if (!line) continue;
      const x = JSON.parse(line) as { pair_id: number; annotator: string };
      const key = `${x.pair_id}/${x.annotator}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const problems: string[] = [];
    let once = 0;
    const ackedKeys = new Set<string>();
    for (const a of r.acked) {
      const stored = byLabel.get(a.labelId);
      if (!stored || stored.annotator !== names[a.annotator]) {
        problems.push(`acknowledged label ${a.labelId} of ${names[a.annotator]} is not in the database`);
        continue;
      }
      const key = `${stored.pairId}/${stored.annotator}`;
      ackedKeys.add(key);
      const n = seen.get(key) ?? 0;
      if (n === 1) once++;
      else problems.push(`acknowledged label ${a.labelId} is in the export ${n} times`);
    }
    if (ackedKeys.size !== r.acked.length) problems.push(`${r.acked.length - ackedKeys.size} acknowledgements name the same label`);
    // a label whose post got no answer may be stored: at most that many rows beyond the acknowledged ones
    const extra = [...seen.keys()].filter((key) => !ackedKeys.has(key));
    if (extra.length > r.unanswered) problems.push(`${extra.length} exported rows were never acknowledged (${r.unanswered} posts unanswered), e.g. ${extra[0]}`);
    if (counts.written !== seen.size) problems.push(`the export says ${counts.written} rows; the file has ${seen.size}`);
    if (byLabel.size !== r.acked.length + extra.length) problems.push(`${byLabel.size} labels stored, ${r.acked.length} acknowledged`);
    return {
      phase: kind,
      annotators: o.annotators,
      pairs: o.pairs,
      labelsPerSecond: r.counted / r.measuredSeconds,
      firstNext: { p50: percentile(r.first, 0.5), max: Math.max(...r.first) },
      offered: kind === 'paced' ? o.rate : null,
      next: { p50: percentile(r.next, 0.5), p99: percentile(r.next, 0.99), n: r.next.length },
      label: { p50: percentile(r.label, 0.5), p99: percentile(r.label, 0.99), n: r.label.length },
      acked: r.acked.length,
      exportedOnce: once,
      problems: problems.slice(0, 10),
      errors: r.errors,
      serverLoopBusy: busy,
      perCommit: batches ? writes / batches : 0,
      largestCommit: largest,
      setupSeconds,
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function rowsOf(p: PhaseResult): BenchRow[] {
  const at = `label ${p.phase} ${p.annotators} annotators, ${p.pairs} pairs`;
  const bars = p.annotators >= 200 && p.pairs >= 50_000;
  const p99 = (ms: number) => (bars ? `bar <= ${BAR_P99_MS} ms: ${ms <= BAR_P99_MS ? 'met' : 'missed'}` : '');
  const errs = Object.entries(p.errors)
    .map(([k, v]) => `${v}x ${k}`)
    .join(', ');
  return [
    row(
      `${at}: labels/s`,
      p.labelsPerSecond,
      bars ? BAR_RATE : null,
      'labels/s',
      `${p.offered !== null ? `aimed at ${p.offered}; ` : ''}${bars ? `bar >= ${BAR_RATE}: ${p.labelsPerSecond >= BAR_RATE ? 'met' : 'missed'}; ` : ''}server loop busy ${(100 * p.serverLoopBusy).toFixed(0)}%, ${p.perCommit.toFixed(1)} writes per commit (at most ${p.largestCommit})${errs ? `; ${errs}` : ''}`,
    ),
    row(
      `${at}: GET /api/next p50`,
      p.next.p50,
      null,
      'ms',
      `${p.next.n} requests after the warm-up; each annotator's first: p50 ${p.firstNext.p50.toFixed(0)} ms, max ${p.firstNext.max.toFixed(0)} ms`,
    ),
    row(`${at}: GET /api/next p99`, p.next.p99, null, 'ms', p99(p.next.p99)),
    row(`${at}: POST /api/label p50`, p.label.p50, null, 'ms', `${p.label.n} requests after the warm-up`),
    row(`${at}: POST /api/label p99`, p.label.p99, null, 'ms', p99(p.label.p99)),
    row(`${at}: acknowledged labels exported exactly once`, p.exportedOnce, p.acked, 'labels', p.problems.length ? `PROBLEMS: ${p.problems.join('; ')}` : 'every acknowledged label, nothing else'),
  ];
}

export const BENCH_LABEL: Command = {
  name: 'bench label',
  summary: 'the labeling server under load: 200 annotators on a 50,000-pair round (labels/s, p50/p99 latency, export check)',
  options: OPTIONS,
  async run(ctx) {
    const v = ctx.values as { json: boolean; quick: boolean; annotators: number; pairs: number; rate: number; seconds: number; warmup: number; phases: 'both' | 'paced' | 'saturated' };
    const o = v.quick ? { annotators: 20, pairs: 2000, rate: Math.min(v.rate, 100), seconds: 4, warmup: 1 } : v;
    const log = (s: string) => ctx.err.write(s + '\n');
    const rows: BenchRow[] = [];
    let ok = true;
    for (const kind of v.phases === 'both' ? (['paced', 'saturated'] as const) : [v.phases]) {
      const p = await phase(kind, o, log);
      if (p.problems.length || p.acked === 0) ok = false;
      rows.push(...rowsOf(p));
    }
    printRows(rows, v.json, (s) => ctx.out.write(s + '\n'));
    return ok ? 0 : 1;
  },
};
