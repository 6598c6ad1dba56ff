// The HTTP thread's handle on the engine thread: starts the worker, submits jobs and routes each step's events
// to the request they belong to, cancels, and knows how many requests wait for a place in the batch (the server
// answers 429 past its queue limit). A worker that dies fails every request in flight with its error.
import { Worker } from 'node:worker_threads';
import type { EngineInit, Finish, FromEngine, Job, LoadedModel, ModelSpec, SamplingParams, ToEngine } from './protocol.js';

interface JobHandlers {
  /** the request left the queue: its prompt is being prefilled */
  onStart?(): void;
  onPromptLogprobs?(logprobs: (number | null)[], top: ([number, number][] | null)[]): void;
  onToken(choice: number, token: number, logprob: number, top: [number, number][] | null): void;
  onDone(choice: number, finish: Finish): void;
  /** status: 400 when the engine refused the job, 500 when it failed running it, 503 when it is gone */
  onError(message: string, status: number): void;
}

export interface JobHandle {
  readonly id: number;
  /** ends the request now; its slot is freed before the next step */
  cancel(): void;
  /** ends one choice (its text met a stop string) */
  stopChoice(choice: number): void;
}

interface Pending {
  handlers: JobHandlers;
  n: number;
  /** choices finished or stopped: their later events are dropped */
  done: Set<number>;
  started: boolean;
}

interface EngineOptions {
  models: ModelSpec[];
  maxBatch: number;
  prefillBudget?: number;
}

export class Engine {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: string | null = null;
  private closing: Promise<void> | null = null;
  /** sequences in the batch and requests waiting, as of the last step */
  load = { active: 0, waiting: 0 };

  private constructor(
    private readonly worker: Worker,
    readonly models: LoadedModel[],
  ) {}

  static start(o: EngineOptions): Promise<Engine> {
    const init: EngineInit = { alignkitServe: true, models: o.models, maxBatch: o.maxBatch, prefillBudget: o.prefillBudget ?? 2048 };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
    return new Promise((resolve, reject) => {
      let engine: Engine | null = null;
      worker.on('message', (m: FromEngine) => {
        if (m.type === 'ready') {
          engine = new Engine(worker, m.models);
          resolve(engine);
        } else if (m.type === 'fatal') {
          void worker.terminate();
          reject(new Error(m.error));
        } else engine?.onMessage(m);
      });
      worker.on('error', (e) => {
        if (engine) engine.die(`the engine thread failed: ${e.message}`);
        else reject(e);
      });
      worker.on('exit', (code) => {
        if (engine && !engine.closing) engine.die(`the engine thread exited (code ${code})`);
        else if (!engine) reject(new Error(`the engine thread exited while loading (code ${code})`));
      });
    });
  }

  /** Why the engine cannot take requests (null while it can). */
  get failure(): string | null {
    return this.dead;
  }

  /** Requests submitted whose prefill has not started yet. */
  get queued(): number {
    let n = 0;
    for (const p of this.pending.values()) if (!p.started) n++;
    return n;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private post(m: ToEngine): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  submit(model: string, prompt: number[], params: SamplingParams, handlers: JobHandlers): JobHandle {
    const id = this.nextId++;
    const job: Job = { id, model, prompt, params };
    const handle: JobHandle = {
      id,
      cancel: () => {
        if (this.pending.delete(id)) this.post({ type: 'cancel', id });
      },
      stopChoice: (choice: number) => {
        const p = this.pending.get(id);
        if (!p || p.done.has(choice)) return;
        p.done.add(choice);
        if (p.done.size < p.n) return this.post({ type: 'stop', id, choice });
        this.pending.delete(id);
        this.post({ type: 'cancel', id });
      },
    };
    if (this.dead || this.closing) {
      const why = this.dead ?? 'the server is shutting down';
      queueMicrotask(() => handlers.onError(why, 503));
      return handle;
    }
    this.pending.set(id, { handlers, n: params.n, done: new Set(), started: false });
    this.post({ type: 'submit', job });
    return handle;
  }

  private onMessage(m: FromEngine): void {
    if (m.type === 'failed') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      p?.handlers.onError(m.error, m.status);
      return;
    }
    if (m.type !== 'step') return;
    this.load = { active: m.active, waiting: m.waiting };
    for (const id of m.started) {
      const p = this.pending.get(id);
      if (p) {
        p.started = true;
        p.handlers.onStart?.();
      }
    }
    for (const e of m.promptLogprobs) this.pending.get(e.id)?.handlers.onPromptLogprobs?.(e.logprobs, e.top);
    for (const [id, choice, token, lp, top] of m.tokens) {
      const p = this.pending.get(id);
      if (p && !p.done.has(choice)) p.handlers.onToken(choice, token, lp, top);
    }
    for (const [id, choice, finish] of m.done) {
      const p = this.pending.get(id);
      if (!p || p.done.has(choice)) continue;
      p.done.add(choice);
      if (p.done.size === p.n) this.pending.delete(id);
      p.handlers.onDone(choice, finish);
    }
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = why;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.handlers.onError(why, 503);
  }

  /** Stops the engine thread (requests still in flight fail), freeing the models. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.dead) {
        void this.worker.terminate().then(() => resolve());
        return;
      }
      const timer = setTimeout(() => void this.worker.terminate(), 10_000);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage({ type: 'shutdown' } satisfies ToEngine);
    }).then(() => {
      const all = [...this.pending.values()];
      this.pending.clear();
      for (const p of all) p.handlers.onError('the server shut down', 503);
    });
    return this.closing;
  }
}
