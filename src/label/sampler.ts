// The server-side driver of the sampling thread: follows the database's latest round, starts a Worker with that
// round's policy (or two), and keeps a few pairs ready ahead of the annotators by sending it one pending prompt
// at a time; each pair is committed as it arrives. Rounds of ready-made pairs need no worker.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { whenUnlocked } from './busy.js';
import type { FeedbackDB, Round } from './db.js';
import type { FromWorker, SamplerInit, ToWorker } from './sampler-worker.js';

/** How long the sampler waits to store a sampled pair while another process holds the database's lock, ms. */
const STORE_WAIT_MS = 60_000;

interface SamplerOptions {
  /** keep at least this many unclaimed pairs ready (default 8) */
  lookahead?: number;
  /** how often to look for a new round opened by `alignkit label round`, ms (default 1000) */
  pollMs?: number;
  /** an assignment left open longer than this no longer holds its pair, ms */
  leaseMs: number;
  log?: (line: string) => void;
}

type SamplerState = 'none' | 'loading' | 'sampling' | 'idle' | 'error';

interface SamplerStatus {
  state: SamplerState;
  round: number | null;
  message: string | null;
}

/** Events: 'round' (id) when it follows a new round, 'pair' (pairId), 'failed' (promptId, error), 'error' (message). */
export class Sampler extends EventEmitter {
  private roundId: number | null = null;
  private worker: Worker | null = null;
  private ready = false;
  private inFlight: number | null = null;
  private state: SamplerState = 'none';
  private message: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private waiters: (() => void)[] = [];
  private closed = false;
  private readonly lookahead: number;
  private readonly pollMs: number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly store: FeedbackDB,
    private readonly opts: SamplerOptions,
  ) {
    super();
    this.lookahead = opts.lookahead ?? 8;
    this.pollMs = opts.pollMs ?? 1000;
    this.log = opts.log ?? (() => {});
  }

  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), this.pollMs);
    this.timer.unref();
  }

  status(): SamplerStatus {
    return { state: this.state, round: this.roundId, message: this.message };
  }

  /** The round being served. */
  get round(): number | null {
    return this.roundId;
  }

  /** Follows a round opened since the last look. */
  check(): void {
    if (this.closed) return;
    const id = this.store.latestRoundId();
    if (id !== null && id !== this.roundId) this.follow(this.store.round(id)!);
  }

  /** Call after anything that may use up ready pairs (an assignment, a label). */
  nudge(): void {
    this.pump();
  }

  /** Resolves once nothing is loading or being sampled and nothing more is wanted now. */
  settled(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.stopWorker();
    this.wake();
  }

  private isSettled(): boolean {
    return this.closed || (this.state !== 'loading' && this.inFlight === null);
  }

  private wake(): void {
    if (!this.isSettled()) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async stopWorker(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.ready = false;
    this.inFlight = null;
    if (w) await w.terminate();
  }

  private follow(r: Round): void {
    void this.stopWorker();
    this.roundId = r.id;
    this.message = null;
    this.emit('round', r.id);
    if (r.source === 'policy' && this.store.pendingCount(r.id) > 0) this.spawn(r);
    else this.state = 'idle';
    this.wake();
  }

  private spawn(r: Round): void {
    const policies = r.policyB ? [r.policy!, r.policyB] : [r.policy!];
    const init: SamplerInit = { alignkitSampler: true, policies, settings: r.settings };
    const w = new Worker(new URL('./sampler-worker.js', import.meta.url), { workerData: init });
    this.worker = w;
    this.ready = false;
    this.state = 'loading';
    this.log(`round ${r.id}: loading ${policies.join(' and ')} in the sampling thread`);
    w.on('message', (m: FromWorker) => {
      if (w === this.worker) void this.onMessage(r, m);
    });
    w.on('error', (e) => {
      if (w === this.worker) this.fail(`the sampling thread failed: ${e.message}`);
    });
    w.on('exit', (code) => {
      if (w === this.worker && !this.closed) this.fail(`the sampling thread exited (code ${code})`);
    });
  }

  private async onMessage(r: Round, m: FromWorker): Promise<void> {
    try {
      switch (m.type) {
        case 'ready':
          this.ready = true;
          this.state = 'idle';
          this.log(`round ${r.id}: sampling ready (${m.policies.map((p) => `${p.dir}: ${p.modelVocab} ids, context ${p.maxPositions}`).join('; ')})`);
          break;
        case 'fatal':
          this.fail(`cannot sample round ${r.id}: ${m.error}`);
          return;
        case 'pair': {
          // another process may hold the write lock for a while: wait for it off the event loop
          const id = await whenUnlocked(
            () =>
              this.store.addSampledPair(m.promptId, {
                responseA: m.responseA,
                responseB: m.responseB,
                sourceA: r.policy!,
                sourceB: r.policyB ?? r.policy!,
                meta: m.meta,
              }),
            STORE_WAIT_MS,
          );
          this.inFlight = null;
          if (id !== null) this.emit('pair', id);
          break;
        }
        case 'failed':
          await whenUnlocked(() => this.store.failPrompt(m.promptId, m.error), STORE_WAIT_MS);
          this.inFlight = null;
          this.log(`round ${r.id}: prompt ${m.promptId} skipped: ${m.error}`);
          this.emit('failed', m.promptId, m.error);
          break;
      }
      this.pump();
    } catch (e) {
      this.fail(`sampling round ${r.id}: ${(e as Error).message}`);
    }
  }

  private fail(message: string): void {
    this.state = 'error';
    this.message = message;
    this.inFlight = null;
    this.log(message);
    const w = this.worker;
    this.worker = null;
    this.ready = false;
    if (w) void w.terminate();
    this.emit('error-state', message);
    this.wake();
  }

  private pump(): void {
    if (this.closed || !this.worker || !this.ready || this.inFlight !== null || this.roundId === null) {
      this.wake();
      return;
    }
    const round = this.roundId;
    const next = this.store.pendingPrompts(round, 1)[0];
    if (!next) {
      // every prompt of the round is sampled (or skipped): free the model
      this.state = 'idle';
      void this.stopWorker();
      this.log(`round ${round}: every prompt is sampled`);
      this.wake();
      return;
    }
    if (this.store.unclaimedCount(round, Date.now(), this.opts.leaseMs) >= this.lookahead) {
      this.state = 'idle';
      this.wake();
      return;
    }
    this.inFlight = next.id;
    this.state = 'sampling';
    const msg: ToWorker = { type: 'sample', promptId: next.id, prompt: next.prompt };
    this.worker.postMessage(msg);
  }
}
