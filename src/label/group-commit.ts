// Group commit for the labeling server's writes. With synchronous=FULL every commit waits for the disk (a few
// hundred microseconds on a quiet SSD, milliseconds on a busy one), and before this each label paid for it alone:
// under load the server spent most of its time in fsync. Here the writes asked for during one turn of the event
// loop run together in one transaction, each in its own savepoint (a write that fails is undone alone and its
// caller gets the error), with one commit and one sync for all of them; each caller's promise settles only after
// that commit, so an acknowledged label is still on disk before it is acknowledged. While another process holds
// the write lock nothing runs: the batch is retried off the event loop, and a write still locked out after its
// deadline gets BusyError (503 with Retry-After), as with whenUnlocked.
import type Database from 'better-sqlite3';
import { BusyError, isBusy } from './busy.js';

interface Pending {
  fn: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  since: number;
}

export class GroupCommit {
  private queue: Pending[] = [];
  private timer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private pause = 5;
  /** batches committed and writes in them (for the bench and the tests) */
  readonly stats = { batches: 0, writes: 0, largest: 0 };

  constructor(
    private readonly db: Database.Database,
    private readonly deadlineMs: number,
  ) {}

  /** Runs fn inside the next batch's transaction; resolves with its result once that batch has committed. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject, since: Date.now() });
      this.schedule(0);
    });
  }

  private schedule(delayMs: number): void {
    if (this.timer) return;
    this.timer = delayMs > 0 ? setTimeout(() => this.flush(), delayMs) : setImmediate(() => this.flush());
  }

  private flush(): void {
    this.timer = null;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return;
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.db
        .transaction(() => {
          for (const p of batch) {
            try {
              // nested: a savepoint, rolled back by itself if fn throws
              results.push({ ok: true, value: this.db.transaction(p.fn)() });
            } catch (e) {
              if (isBusy(e)) throw e;
              results.push({ ok: false, value: e });
            }
          }
        })
        .immediate();
    } catch (e) {
      if (!isBusy(e)) {
        // the transaction did not commit: nothing of the batch stands
        for (const p of batch) p.reject(e);
        return this.next();
      }
      // another process holds the write lock and nothing ran: wait off the event loop and try again
      const now = Date.now();
      const keep: Pending[] = [];
      for (const p of batch) {
        if (now - p.since >= this.deadlineMs) p.reject(new BusyError(now - p.since));
        else keep.push(p);
      }
      this.queue = keep.concat(this.queue);
      const soonest = Math.min(...this.queue.map((p) => p.since + this.deadlineMs - now));
      const pause = Math.max(1, Math.min(this.pause, soonest));
      this.pause = Math.min(this.pause * 2, 200);
      if (this.queue.length) this.schedule(pause);
      return;
    }
    this.pause = 5;
    this.stats.batches++;
    this.stats.writes += batch.length;
    this.stats.largest = Math.max(this.stats.largest, batch.length);
    batch.forEach((p, i) => (results[i]!.ok ? p.resolve(results[i]!.value) : p.reject(results[i]!.value)));
    this.next();
  }

  private next(): void {
    if (this.queue.length) this.schedule(0);
  }
}
