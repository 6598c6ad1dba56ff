// Waiting for SQLite's write lock without blocking the event loop. better-sqlite3 is synchronous: with a long
// busy_timeout, a write that meets another process's lock waits inside the call and every other request waits with
// it. The server sets a short busy timeout instead and retries here, yielding to the event loop between tries; a
// write still locked out at the deadline becomes a 503 with Retry-After. Every store write is one transaction, so a
// try that failed with SQLITE_BUSY changed nothing and can simply be run again.

/** Is this error SQLite saying another connection holds the lock? */
export function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

export class BusyError extends Error {
  constructor(readonly waitedMs: number) {
    super(`the feedback database is locked by another process (waited ${waitedMs} ms); nothing was changed, try again`);
  }
}

/** Runs fn, retrying with growing pauses (off the event loop) while the database is locked, up to deadlineMs. */
export async function whenUnlocked<T>(fn: () => T, deadlineMs: number): Promise<T> {
  const start = Date.now();
  let pause = 5;
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e)) throw e;
      const waited = Date.now() - start;
      if (waited >= deadlineMs) throw new BusyError(waited);
      await new Promise((r) => setTimeout(r, Math.min(pause, deadlineMs - waited)));
      pause = Math.min(pause * 2, 200);
    }
  }
}
