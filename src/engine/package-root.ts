// Where the package is installed: the first folder above this file holding package.json and binding.gyp
// (the built addon, the bench's reference programs and, for tests, ../shared live relative to it).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('alignkit: cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}
