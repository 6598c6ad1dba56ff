// Benchmark rows and how they are printed: a table for people, one JSON object per line with --json.

export interface BenchRow {
  name: string;
  /** alignkit's figure (higher is better), or null when it could not run. */
  alignkit: number | null;
  /** the reference's figure in the same unit, or null when the reference is unavailable (see note). */
  reference: number | null;
  /** alignkit / reference, or null. */
  ratio: number | null;
  unit: string;
  /** what the reference was, its thread setting, or why it was skipped. */
  note?: string;
}

export function row(name: string, alignkit: number | null, reference: number | null, unit: string, note?: string): BenchRow {
  const ratio = alignkit !== null && reference !== null && reference > 0 ? alignkit / reference : null;
  return note === undefined ? { name, alignkit, reference, ratio, unit } : { name, alignkit, reference, ratio, unit, note };
}

function fmt(v: number | null, digits = 1): string {
  return v === null ? '-' : v.toFixed(digits);
}

export function printRows(rows: readonly BenchRow[], json: boolean, out: (s: string) => void = (s) => process.stdout.write(s + '\n')): void {
  if (json) {
    for (const r of rows) out(JSON.stringify(r));
    return;
  }
  const head = ['benchmark', 'alignkit', 'reference', 'ratio', 'unit', 'note'];
  const body = rows.map((r) => [r.name, fmt(r.alignkit), fmt(r.reference), r.ratio === null ? '-' : r.ratio.toFixed(2) + 'x', r.unit, r.note ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  out(line(head));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) out(line(b));
}
