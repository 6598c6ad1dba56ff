// Simulated annotators: programs that label through the labeling app's real HTTP API, each with its own token —
// GET /api/next, then POST /api/label — exactly as a person's browser does, so an experiment's human feedback
// goes through the same server, database and export that people use. Each answer comes from a judge (a
// function of the prompt and the two responses as shown), made noisy on purpose: with probability
// `positionBias` the annotator answers "left" whatever is shown; otherwise with probability `errorRate` a decisive
// judgement is flipped. The database marks such annotators as simulated, and everything that prints them says so.
import { Random } from '../engine/random.js';
import type { FeedbackDB } from './db.js';
import type { PromptValue } from './inputs.js';

/** What a simulated annotator thinks of the pair as shown. */
export type SimulatedJudge = (prompt: PromptValue, shownLeft: string, shownRight: string) => 'left' | 'right' | 'tie';

interface SimulateOptions {
  /** the labeling server's base URL (http://127.0.0.1:8765/) */
  url: string;
  /** one token per simulated annotator */
  tokens: readonly string[];
  judge: SimulatedJudge;
  /** probability of flipping a decisive judgement */
  errorRate?: number;
  /** probability of answering 'left' whatever is shown */
  positionBias?: number;
  /** stop after this many labels in all (default: when nothing is left to label) */
  labels?: number;
  /** keep polling when there is nothing to label (a loop that opens rounds later); stop with `signal` */
  wait?: boolean;
  /** how long to wait between polls when nothing is ready, ms (default 100) */
  pollMs?: number;
  seed?: number;
  signal?: AbortSignal;
}

interface SimulateResult {
  labels: number;
  /** decisive judgements flipped on purpose */
  flipped: number;
  /** answers given as 'left' regardless of the pair */
  biased: number;
  /** judgements that were decisive (before noise) */
  decisive: number;
  perAnnotator: number[];
}

interface NextReply {
  item: { assignmentId: number; prompt: PromptValue; left: string; right: string } | null;
  progress: { ready: number; sampling: number } | null;
}

async function call(url: string, token: string, init: RequestInit = {}, signal?: AbortSignal): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { ...init, signal, headers: { ...(init.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` } });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** Runs the annotators concurrently until the labels are given, nothing is left, or the signal aborts. */
export async function simulateAnnotators(o: SimulateOptions): Promise<SimulateResult> {
  const err = o.errorRate ?? 0,
    bias = o.positionBias ?? 0;
  if (!(err >= 0 && err <= 1) || !(bias >= 0 && bias <= 1)) throw new Error(`simulate: errorRate ${err} and positionBias ${bias} must lie in [0, 1]`);
  if (!o.tokens.length) throw new Error('simulate: no annotator tokens');
  const base = o.url.endsWith('/') ? o.url : `${o.url}/`;
  const res: SimulateResult = { labels: 0, flipped: 0, biased: 0, decisive: 0, perAnnotator: o.tokens.map(() => 0) };
  let budget = o.labels ?? Infinity;
  const one = async (k: number): Promise<void> => {
    const token = o.tokens[k]!;
    const rng = new Random((o.seed ?? 0) * 7919 + k + 1);
    while (budget > 0 && !o.signal?.aborted) {
      let next: NextReply;
      try {
        const r = await call(new URL('api/next', base).href, token, {}, o.signal);
        if (r.status === 401) throw new Error(`simulated annotator ${k + 1}: the server refused its token (401)`);
        if (r.status === 503) {
          // the database is locked by another process for now: ask again shortly
          await new Promise((res2) => setTimeout(res2, 200));
          continue;
        }
        if (r.status !== 200) throw new Error(`simulated annotator ${k + 1}: GET /api/next answered ${r.status}: ${JSON.stringify(r.body)}`);
        next = r.body as NextReply;
      } catch (e) {
        if (o.signal?.aborted) return;
        throw e;
      }
      const item = next.item;
      if (!item) {
        // nothing now: pairs may still be sampled (or, with `wait`, a round may open later)
        if (!o.wait && (next.progress?.sampling ?? 0) === 0) return;
        await new Promise((r) => setTimeout(r, o.pollMs ?? 100));
        continue;
      }
      if (budget <= 0) return;
      budget--;
      let choice: 'left' | 'right' | 'tie';
      if (rng.uniform() < bias) {
        choice = 'left';
        res.biased++;
      } else {
        choice = o.judge(item.prompt, item.left, item.right);
        if (choice !== 'tie') {
          res.decisive++;
          if (rng.uniform() < err) {
            choice = choice === 'left' ? 'right' : 'left';
            res.flipped++;
          }
        }
      }
      let r;
      try {
        r = await call(
          new URL('api/label', base).href,
          token,
          { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ assignmentId: item.assignmentId, choice, reason: null }) },
          o.signal,
        );
      } catch (e) {
        if (o.signal?.aborted) return;
        throw e;
      }
      if (r.status === 503) {
        budget++; // not stored: the server asks to retry
        await new Promise((res2) => setTimeout(res2, 200));
        continue;
      }
      if (r.status !== 200) throw new Error(`simulated annotator ${k + 1}: POST /api/label answered ${r.status}: ${JSON.stringify(r.body)}`);
      res.labels++;
      res.perAnnotator[k]!++;
    }
  };
  await Promise.all(o.tokens.map((_, k) => one(k)));
  return res;
}

/**
 * Tokens for K simulated annotators in a database: `sim-1` … `sim-K`, created (marked simulated) when absent, and
 * given fresh tokens (a token is stored only as a hash, so an earlier run's cannot be read back).
 */
export function simulatedTokens(store: FeedbackDB, k: number, prefix = 'sim'): string[] {
  const existing = new Map(store.annotators({ all: true }).map((a) => [a.name, a]));
  return Array.from({ length: k }, (_, i) => {
    const name = `${prefix}-${i + 1}`;
    const a = existing.get(name);
    if (!a) return store.addAnnotator(name, { simulated: true }).token;
    if (!a.simulated) throw new Error(`annotator ${JSON.stringify(name)} exists and is not simulated: choose another --prefix`);
    if (a.removed) throw new Error(`simulated annotator ${JSON.stringify(name)} was removed`);
    return store.rotateToken(name);
  });
}
