// One labeling server per feedback database. Two servers on one file would each sample and assign pairs on their
// own view of the round (double assignments, two samplers racing), so the second is refused. The guard is a lock
// file beside the database, `<db>.lock`, holding the owner's pid, host name and port; it is created exclusively
// (O_EXCL) and removed when the server closes. A lock left by a process that no longer runs on this host (a
// `kill -9`) is stale and taken over.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

interface LockInfo {
  pid: number;
  host: string;
  port: number | null;
  started: string;
}

interface ServerLock {
  readonly path: string;
  /** Records the port once the server listens. */
  setPort(port: number): void;
  release(): void;
}

/** Locks this process holds (a second server in the same process is refused too). */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function read(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>;
    return typeof v.pid === 'number' ? { pid: v.pid, host: String(v.host ?? ''), port: typeof v.port === 'number' ? v.port : null, started: String(v.started ?? '') } : null;
  } catch {
    return null;
  }
}

/** Takes `<dbPath>.lock` for this process, or throws naming the server that holds it. */
export function acquireServerLock(dbPath: string): ServerLock {
  const path = `${dbPath}.lock`;
  const info: LockInfo = { pid: process.pid, host: hostname(), port: null, started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(info) + '\n', { flag: 'wx' });
      heldHere.add(path);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${path}: another labeling server took the lock at the same moment`);
        throw new Error(`${path}: cannot create the server lock file (${(e as Error).message})`);
      }
      const held = read(path);
      if (held && held.host === info.host && (held.pid === process.pid ? heldHere.has(path) : alive(held.pid)))
        throw new Error(
          `${dbPath}: a labeling server already serves this database (pid ${held.pid}${held.port !== null ? `, port ${held.port}, http://127.0.0.1:${held.port}/` : ''}, since ${held.started}); stop it first, or use another --db`,
        );
      if (held && held.host !== info.host) throw new Error(`${dbPath}: locked by a labeling server on host ${held.host} (pid ${held.pid}); if it is gone, delete ${path}`);
      // stale (its process is gone) or unreadable: take it over
      unlinkSync(path);
    }
  }
  let released = false;
  return {
    path,
    setPort(port: number) {
      info.port = port;
      if (!released) writeFileSync(path, JSON.stringify(info) + '\n');
    },
    release() {
      if (released) return;
      released = true;
      heldHere.delete(path);
      const held = read(path);
      if (held?.pid === process.pid) unlinkSync(path);
    },
  };
}
