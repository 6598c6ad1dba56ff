// `alignkit compare`: the mission's table, measured.
import type { Command } from '../options/command.js';
import { COMPARE_FIELDS, type CompareOptions } from './options.js';
import { writeReport } from './report.js';
import { runCompare } from './run.js';
import { formatShowcase, formatTable } from './table.js';

export const COMPARE_COMMAND: Command = {
  name: 'compare',
  summary: 'SFT, RLHF, DPO and CAI from one helpful-only base on the lock-picking world: human data, complexity, harmlessness and helpfulness, measured',
  options: COMPARE_FIELDS,
  details:
    'Generates the world of each seed, trains its base from scratch, runs every method, and judges every policy on held-out prompts. Writes compare.json, report.html and every model under --output-dir; a restart skips finished stages. See docs/compare.md.',
  async run(ctx) {
    const v = ctx.values as CompareOptions;
    const r = await runCompare(v, (l) => ctx.err.write(`${l}\n`));
    if (v.report) ctx.err.write(`report: ${await writeReport(r, r.output_dir)}\n`);
    if (v.json) {
      for (const row of r.table) ctx.out.write(JSON.stringify(row) + '\n');
      return 0;
    }
    ctx.out.write(`\n${formatTable(r.table)}\n\n${formatShowcase(r.rows)}\n\n(compare.json in ${r.output_dir})\n`);
    return 0;
  },
};
