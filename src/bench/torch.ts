// Whether Debian's PyTorch (the reference of the model benchmarks) can run here.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** null when /usr/bin/python3 imports torch, else why not. */
export function torchMissing(): string | null {
  if (!existsSync('/usr/bin/python3')) return 'no /usr/bin/python3';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'PyTorch is not installed (apt-get install python3-torch)';
  }
}
