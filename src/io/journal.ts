// Append-only JSONL files that survive a kill -9: each record is one line written with a single write() and
// fsync'd, so after a crash the file holds every finished record and at most one torn last line, which reading
// drops (and repairs). Derived files are rewritten whole through a temporary file and a rename.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, truncateSync, writeSync } from 'node:fs';

/** The records of a journal; a torn last line (a crash mid-write) is cut off the file. */
export function readJournal<T = unknown>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const out: T[] = [];
  let good = 0;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break; // no newline: a torn last line
    const line = text.slice(pos, nl);
    if (line.trim()) {
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        throw new Error(`${path}: line ${text.slice(0, pos).split('\n').length} is not JSON (the file was edited?)`);
      }
    }
    pos = nl + 1;
    good = Buffer.byteLength(text.slice(0, pos));
  }
  if (good < Buffer.byteLength(text)) truncateSync(path, good);
  return out;
}

/** An open journal: append() returns once the record is on disk. */
export class Journal {
  private fd: number;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }
  append(record: unknown): void {
    writeSync(this.fd, JSON.stringify(record) + '\n');
    fsyncSync(this.fd);
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Writes a whole JSONL file atomically (temporary file, then rename). */
export function writeJsonlAtomic(path: string, records: readonly unknown[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    if (records.length) writeSync(fd, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
