// Progress of long work on stderr: a bar on a terminal (cli-progress), a line every few seconds otherwise (so CI
// logs stay readable), with rates (items/s and any counters given, e.g. tokens/s) and an ETA.
import cliProgress from 'cli-progress';

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly t0 = performance.now();
  private lastLine = 0;
  private done = 0;
  private counters: Record<string, number> = {};

  constructor(
    readonly label: string,
    readonly total: number,
    /** items already done before this process (a resumed run): not counted in the rates */
    private readonly already = 0,
    private readonly quiet = false,
    useBar = process.stderr.isTTY === true,
  ) {
    this.done = already;
    if (useBar && !quiet) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} {bar} {value}/{total} | {rates} | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, already, { rates: '' });
    }
  }

  /** Rates since this process started: items/s and each counter per second. */
  rates(): Record<string, number> {
    const s = Math.max(1e-9, (performance.now() - this.t0) / 1000);
    const out: Record<string, number> = { [`${this.label}/s`]: (this.done - this.already) / s };
    for (const [k, v] of Object.entries(this.counters)) out[`${k}/s`] = v / s;
    return out;
  }

  /** Seconds left at the rate so far (NaN before the first item). */
  eta(): number {
    const s = (performance.now() - this.t0) / 1000;
    const n = this.done - this.already;
    return n > 0 ? ((this.total - this.done) * s) / n : NaN;
  }

  /** `n` more items done; `counts` adds to the counters (e.g. { tokens: 120 }). */
  tick(n: number, counts: Record<string, number> = {}): void {
    this.done += n;
    for (const [k, v] of Object.entries(counts)) this.counters[k] = (this.counters[k] ?? 0) + v;
    if (this.quiet) return;
    const rates = Object.entries(this.rates())
      .map(([k, v]) => `${v.toFixed(v >= 100 ? 0 : 1)} ${k}`)
      .join(' | ');
    if (this.bar) {
      this.bar.update(this.done, { rates });
      return;
    }
    const now = performance.now();
    if (this.done >= this.total || now - this.lastLine > 2000) {
      this.lastLine = now;
      const eta = this.eta();
      process.stderr.write(`${this.label} ${this.done}/${this.total} | ${rates} | ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '?'}\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
