// How a trainer tells what the data pass left out: nothing is dropped silently.
import { type DataReport, formatReport } from '../data/index.js';

/** Says on stderr what was skipped or truncated. */
export function reportSkipped(r: DataReport): void {
  if (r.skipped > 0 || r.truncated > 0) process.stderr.write(formatReport(r) + '\n');
}
