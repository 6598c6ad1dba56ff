// A run made of stages (a recipe, the rounds of an RLHF loop): each stage works in its own folder under the
// run's output folder and writes stage.json there last, with what it measured; a restart skips every stage that
// has one, so a finished stage is never redone and an interrupted one starts (or resumes) again.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StageRecord {
  stage: string;
  seconds: number;
  [k: string]: unknown;
}

export class StagedRun {
  readonly records: StageRecord[] = [];

  constructor(
    readonly outputDir: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    mkdirSync(outputDir, { recursive: true });
  }

  dir(name: string): string {
    return join(this.outputDir, name);
  }

  /** The record of a finished stage, or null. */
  done(name: string): StageRecord | null {
    const f = join(this.dir(name), 'stage.json');
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as StageRecord) : null;
  }

  /** Runs a stage unless it finished before; returns its record. */
  async stage(name: string, what: string, run: () => Promise<Record<string, unknown>>): Promise<StageRecord> {
    const prev = this.done(name);
    if (prev) {
      this.log(`== ${name}: done before (${what}); skipped`);
      this.records.push(prev);
      return prev;
    }
    this.log(`== ${name}: ${what}`);
    const t0 = performance.now();
    const r: StageRecord = { stage: name, ...(await run()), seconds: (performance.now() - t0) / 1000 };
    mkdirSync(this.dir(name), { recursive: true });
    const f = join(this.dir(name), 'stage.json');
    writeFileSync(`${f}.tmp`, JSON.stringify(r, null, 1) + '\n');
    renameSync(`${f}.tmp`, f);
    this.records.push(r);
    return r;
  }
}
