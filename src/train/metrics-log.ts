// Where training reports go: metrics as JSON lines (one object per logged step, TRL's metric names) and a
// progress display (a bar on a terminal, a periodic line otherwise, so CI logs stay readable).
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';

export class MetricsLog {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = -Infinity;
  private readonly started = performance.now();
  private firstStep: number | null = null;
  private firstAt = 0;

  constructor(
    readonly path: string | null,
    readonly total: number,
    readonly label: string,
    private readonly quiet = false,
    useBar = process.stderr.isTTY === true,
  ) {
    if (path) mkdirSync(dirname(path), { recursive: true });
    if (useBar && !quiet) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} {bar} {value}/{total} | ETA {eta_formatted} | {metrics}`, stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { metrics: '' });
    }
  }

  /** Appends one metrics record (step, epoch and the trainer's named metrics). */
  write(record: Record<string, number | string>): void {
    if (this.path) appendFileSync(this.path, JSON.stringify(record) + '\n');
  }

  /** Moves the progress display to `step`, showing a few metrics. */
  progress(step: number, shown: Record<string, number>): void {
    if (this.quiet) return;
    if (this.firstStep === null) {
      this.firstStep = step;
      this.firstAt = performance.now();
    }
    const secs = (performance.now() - this.firstAt) / 1000;
    const withRate = step > this.firstStep && secs > 0 ? { ...shown, 'steps/s': (step - this.firstStep) / secs } : shown;
    const text = Object.entries(withRate)
      .map(([k, v]) => `${k} ${Math.abs(v) >= 100 || v === 0 ? v.toFixed(1) : v.toPrecision(4)}`)
      .join(' | ');
    if (this.bar) {
      this.bar.update(step, { metrics: text });
      return;
    }
    const now = performance.now();
    if (step === this.total || now - this.lastLine > 2000) {
      this.lastLine = now;
      const el = (now - this.started) / 1000;
      const eta = this.eta(step);
      process.stderr.write(`${this.label} ${step}/${this.total} (${el.toFixed(0)} s, ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '?'}) ${text}\n`);
    }
  }

  /** Seconds left at this process's rate so far (NaN before two steps). */
  eta(step: number): number {
    if (this.firstStep === null || step <= this.firstStep) return NaN;
    const secs = (performance.now() - this.firstAt) / 1000;
    return ((this.total - step) * secs) / (step - this.firstStep);
  }

  close(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
