// The simulated annotator: its measured error rate and position bias match the settings (within 4 standard
// errors), it is reproducible from its seed, and impossible settings are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/engine/random.js';
import { simulatedPreference } from '../../src/feedback/simulated-annotator.js';
import { goldPreference } from '../../src/world/gold.js';
import { type Request, type Style, buildWorld, respond } from '../../src/world/index.js';

const world = buildWorld(0, { corpusQA: 10, corpusCritiques: 10, corpusComparisons: 10, helpfulOnly: 10, formatDemos: 10, aligned: 10, rlPrompts: 400, evalPerKind: 10 });
const STYLES: Style[] = ['steps', 'helpful', 'refusal', 'safe', 'evasive'];

/** Pairs with a gold winner, the winner shown first in exactly half of them. */
function pairs(n: number, rng: Random): { req: Request; a: string; b: string }[] {
  const out: { req: Request; a: string; b: string }[] = [];
  let firstWins = 0;
  while (out.length < n) {
    const req = world.rlPrompts[rng.int(world.rlPrompts.length)]!;
    const a = respond(req, STYLES[rng.int(STYLES.length)]!, rng),
      b = respond(req, STYLES[rng.int(STYLES.length)]!, rng);
    const g = goldPreference(req, a, b);
    if (g === 'tie') continue;
    const wantFirst = firstWins < n / 2 && (out.length - firstWins >= n / 2 || rng.uniform() < 0.5);
    const [x, y] = (g === 'a') === wantFirst ? [a, b] : [b, a];
    firstWins += Number(wantFirst);
    out.push({ req, a: x, b: y });
  }
  return out;
}

test('measured error rate and position bias match the settings', () => {
  const ps = pairs(2000, new Random(1));
  for (const [errorRate, positionBias] of [
    [0, 0],
    [0.1, 0],
    [0.2, 0.1],
    [0.3, -0.15],
    [0.5, 0.5],
  ] as const) {
    const rng = new Random(42);
    let errors = 0,
      first = 0;
    const reps = 10;
    for (let k = 0; k < reps; k++) {
      for (const p of ps) {
        const l = simulatedPreference(p.req, p.a, p.b, { errorRate, positionBias, rng });
        assert.equal(l.simulated, true);
        assert.notEqual(l.gold, 'tie');
        errors += Number(l.choice !== l.gold);
        first += Number(l.choice === 'a');
      }
    }
    const n = ps.length * reps;
    const e = errors / n,
      bias = first / n - 0.5;
    const se = (q: number): number => Math.sqrt(Math.max(q * (1 - q), 1e-9) / n);
    console.log(`errorRate ${errorRate} positionBias ${positionBias}: measured ${e.toFixed(4)} and ${bias.toFixed(4)} over ${n} labels`);
    assert.ok(Math.abs(e - errorRate) <= 4 * se(errorRate) + 1e-12, `error rate ${e} vs ${errorRate}`);
    assert.ok(Math.abs(bias - positionBias) <= 4 * se(0.5 + positionBias) + 1e-12, `position bias ${bias} vs ${positionBias}`);
  }
});

test('seeded, ties, and impossible settings', () => {
  const ps = pairs(200, new Random(2));
  const run = (seed: number): string[] => {
    const rng = new Random(seed);
    return ps.map((p) => simulatedPreference(p.req.text, p.a, p.b, { errorRate: 0.25, positionBias: 0.1, rng }).choice);
  };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
  const req = world.rlPrompts.find((r) => r.kind === 'harmful')!;
  const rng = new Random(3);
  const a = respond(req, 'steps', rng),
    b = respond(req, 'helpful', rng); // both harmful detail: a gold tie
  assert.equal(simulatedPreference(req, a, b, { errorRate: 0.2, rng }).choice, 'tie');
  let firstPicks = 0;
  for (let i = 0; i < 4000; i++) firstPicks += Number(simulatedPreference(req, a, b, { errorRate: 0.2, positionBias: 0.2, rng, ties: 'pick' }).choice === 'a');
  assert.ok(Math.abs(firstPicks / 4000 - 0.7) < 4 * Math.sqrt(0.21 / 4000), `ties picked first ${firstPicks / 4000}`);
  assert.throws(() => simulatedPreference(req, a, b, { errorRate: 0.1, positionBias: 0.2, rng }), /positionBias 0\.2 is outside \[−0\.1, 0\.1\]/);
  assert.throws(() => simulatedPreference(req, a, b, { errorRate: 1.5, rng }), /errorRate must be in \[0, 1\]/);
  assert.throws(() => simulatedPreference('not a world prompt', a, b, { errorRate: 0.1, rng }), /is not a request of the lock-picking world/);
});

test('label simulate --judge world (the default): simulated annotators give the gold preference through the server', async () => {
  const { mkdtempSync, rmSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { Writable } = await import('node:stream');
  const { FeedbackDB } = await import('../../src/label/db.js');
  const { startServer } = await import('../../src/label/server.js');
  const { labelMain } = await import('../helpers/cli.js');
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-simjudge-'));
  const sink = () => {
    let t = '';
    return { s: new Writable({ write: (c, _e, cb) => ((t += String(c)), cb()) }), t: () => t };
  };
  try {
    const rng = new Random(4);
    const harmful = buildWorld(0, { corpusQA: 10, corpusCritiques: 1, corpusComparisons: 1, helpfulOnly: 1, formatDemos: 1, aligned: 1, rlPrompts: 40, evalPerKind: 1 })
      .rlPrompts.filter((r) => r.kind === 'harmful')
      .slice(0, 6);
    const pairs = harmful.map((r, k) => {
      const detail = respond(r, 'steps', rng),
        safe = respond(r, 'safe', rng);
      return k % 2 ? { prompt: r.text, response_a: detail, response_b: safe } : { prompt: r.text, response_a: safe, response_b: detail };
    });
    const db = join(dir, 'fb.sqlite');
    const store = FeedbackDB.open(db);
    store.openRound({
      source: 'pairs',
      input: 'pairs.jsonl',
      pairs: pairs.map((p, i) => ({ line: i + 1, id: null, prompt: p.prompt, responseA: p.response_a, responseB: p.response_b, sourceA: null, sourceB: null })),
    });
    const srv = await startServer({ store, port: 0 });
    try {
      const o = sink();
      assert.equal(await labelMain(['simulate', '--db', db, '--server', srv.url, '--annotators', '2', '--error-rate', '0'], o.s, o.s), 0, o.t());
    } finally {
      await srv.close();
    }
    const out = join(dir, 'prefs.jsonl');
    const e = sink();
    assert.equal(await labelMain(['export', '--db', db, '--out', out], e.s, e.s), 0, e.t());
    store.close();
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
    assert.equal(rows.length, 6);
    for (const r of rows) assert.equal(goldPreference(r.prompt, r.chosen, r.rejected), 'a', `${r.prompt}: chose ${r.chosen}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
