// A training process for resume.test.ts: runs runSFT on the JSON config file named by ALIGNKIT_RESUME_CHILD;
// with ALIGNKIT_STEP_DELAY_MS it sleeps that long after every logged step, so that the parent can kill it mid-run.
// Without the variable it does nothing (node --test loads every .js file under test/).
import { readFileSync } from 'node:fs';
import { runTraining } from '../../src/train/run.js';

const configFile = process.env.ALIGNKIT_RESUME_CHILD;
if (configFile) {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  const delay = Number(process.env.ALIGNKIT_STEP_DELAY_MS ?? 0);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  await runTraining('sft', config, { locate: (k) => `${configFile}: ${k}`, onLog: () => void (delay > 0 && Atomics.wait(cell, 0, 0, delay)) });
}
