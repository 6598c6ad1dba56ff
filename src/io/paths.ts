// Guards for paths a command writes: never onto one of its own inputs (a model folder, a data file, a live
// database and its -wal/-shm files). Paths are compared after resolving symbolic links, so `./a/../b` and a
// link to the same file are caught too.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';

/** The canonical absolute form of a path that may not exist yet (its nearest existing parent resolved). */
export function canonicalPath(p: string): string {
  const abs = resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const parent = dirname(abs);
  if (parent === abs) return abs;
  return join(canonicalPath(parent), basename(abs));
}

export interface NamedInput {
  /** what the input is, for the message ("the database", "train_file") */
  what: string;
  path: string;
}

/** Refuses an output path (a file or a folder) that is one of the inputs. */
export function assertNotAnInput(output: NamedInput, inputs: readonly (NamedInput | null | undefined)[]): void {
  const out = canonicalPath(output.path);
  for (const i of inputs) {
    if (!i || !i.path) continue;
    if (out === canonicalPath(i.path)) throw new Error(`${output.what} ${output.path} is ${i.what} (${i.path}): writing it would destroy an input; choose another path`);
  }
}
