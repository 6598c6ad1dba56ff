// placeholder, replaced below
import type { DpoBenchOptions } from './dpo-step.js';
import type { BenchRow } from './report.js';
export async function benchDpoLora(o: DpoBenchOptions): Promise<BenchRow[]> {
  throw new Error(`not yet ${o.shape}`);
}
