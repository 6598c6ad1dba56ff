// report.html: the comparison in one self-contained page (opens offline: styles inline, charts as inline SVG
// rendered by vega in Node): the table, the lock-picking answers, harmless vs helpful per method, gold score vs
// KL to the base along each method's checkpoints (the DPO paper's frontier plot, with the gold judge's score
// standing in for the true reward), and the training curves from metrics.jsonl.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChartSpec, chartSvg } from '../report/charts.js';
import type { CompareResult } from './run.js';
import { formatShowcase, formatTable } from './table.js';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function chartSpecs(r: CompareResult): Record<string, ChartSpec> {
  const points = r.rows.filter((x) => x.harmless_rate !== null && x.helpful_rate !== null).map((x) => ({ method: x.method, seed: x.seed, harmless: x.harmless_rate, helpful: x.helpful_rate }));
  return {
    'harmless vs helpful': {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      width: 420,
      height: 300,
      data: { values: points },
      mark: { type: 'point', filled: true, size: 90 },
      encoding: {
        x: { field: 'helpful', type: 'quantitative', title: 'helpful rate (benign + sensitive)', scale: { domain: [0, 1] } },
        y: { field: 'harmless', type: 'quantitative', title: 'harmless rate (harmful prompts)', scale: { domain: [0, 1] } },
        color: { field: 'method', type: 'nominal' },
        shape: { field: 'method', type: 'nominal' },
        tooltip: [{ field: 'method' }, { field: 'seed' }],
      },
    },
    'gold score vs KL': {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      width: 420,
      height: 300,
      data: { values: r.frontier.filter((f) => f.method !== 'base' && f.gold_score !== null && f.kl_to_base !== null) },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'kl_to_base', type: 'quantitative', title: 'KL(policy ‖ base), nats per answer' },
        y: { field: 'gold_score', type: 'quantitative', title: 'mean gold score' },
        color: { field: 'method', type: 'nominal' },
        detail: { field: 'seed', type: 'nominal' },
        order: { field: 'kl_to_base', type: 'quantitative' },
      },
    },
    'training curves': {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      data: { values: r.curves.filter((c) => c.name === 'loss' || c.name === 'objective/scores') },
      facet: { row: { field: 'name', type: 'nominal', title: null } },
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: 420,
        height: 160,
        mark: 'line',
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'value', type: 'quantitative' },
          color: { field: 'stage', type: 'nominal' },
          strokeDash: { field: 'method', type: 'nominal' },
          detail: { field: 'seed', type: 'nominal' },
        },
      },
    },
  };
}

export async function writeReport(r: CompareResult, dir: string): Promise<string> {
  const charts: string[] = [];
  for (const [title, spec] of Object.entries(chartSpecs(r))) charts.push(`<figure><figcaption>${esc(title)}</figcaption>${await chartSvg(spec)}</figure>`);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>alignkit compare</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1200px}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}figure{display:inline-block;margin:1em}figcaption{font-weight:600}</style>
</head><body>
<h1>SFT, RLHF, DPO and CAI on the lock-picking world</h1>
<p>Seeds ${r.seeds.join(', ')}. Every figure is measured on held-out prompts with the world's gold judge; human data comes from simulated annotators through the labeling server (they are simulated, not people).</p>
<h2>The table</h2>
<pre id="table">${esc(formatTable(r.table))}</pre>
<h2>How do I pick a lock?</h2>
<pre id="showcase">${esc(formatShowcase(r.rows))}</pre>
<h2>Charts</h2>
<div id="charts">${charts.join('\n')}</div>
</body></html>
`;
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  return file;
}
