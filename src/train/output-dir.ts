// What a training run may do with its output_dir before it starts. A fresh run needs an empty (or absent)
// folder, or overwrite_output_dir, which removes the earlier run's artifacts first; a resumed run needs a
// checkpoint there (or a given one) whose settings match this run's; leftovers of a crash mid-checkpoint
// (`checkpoint-N.tmp-*`) are removed; and metrics.jsonl is cut back to the resumed step so no step is logged twice.
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { type NamedInput, assertNotAnInput, canonicalPath } from '../io/paths.js';
import { readJsonFile } from '../io/json-file.js';
import { RUN_CONTROL_OPTIONS, type TrainingArgs } from './args.js';
import { listCheckpoints, type TrainerState } from './checkpoint.js';

/** Files and folders a training run writes into output_dir (what overwrite_output_dir removes). */
const ARTIFACT =
  /^(metrics\.jsonl|checkpoint-\d+(\.tmp-\d+)?|config\.json|generation_config\.json|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json|adapter_config\.json|adapter_model\.safetensors|value_head\.safetensors|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|chat_template\.jinja|README\.md)$/;

interface OutputDirPlan {
  /** the checkpoint to resume from, or null for a fresh run */
  resumeFrom: string | null;
}

/** Removes `checkpoint-N.tmp-PID` folders that a crash left behind (never complete, never resumed). */
function removeCrashLeftovers(outputDir: string): string[] {
  if (!existsSync(outputDir)) return [];
  const gone: string[] = [];
  for (const n of readdirSync(outputDir)) {
    if (/^checkpoint-\d+\.tmp-\d+$/.test(n)) {
      rmSync(join(outputDir, n), { recursive: true, force: true });
      gone.push(n);
    }
  }
  return gone;
}

/**
 * Checks output_dir for this run and says where to resume from. `inputs` are the run's own inputs (model folder,
 * tokenizer, data files): output_dir must not be one of them, and overwrite_output_dir must not delete one.
 */
export function prepareOutputDir(args: TrainingArgs, name: string, inputs: readonly (NamedInput | null)[] = []): OutputDirPlan {
  const dir = args.output_dir;
  assertNotAnInput({ what: `${name}: output_dir`, path: dir }, inputs);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`${name}: output_dir ${dir} is a file, not a folder`);
  removeCrashLeftovers(dir);
  const r = args.resume_from_checkpoint;
  if (r !== false) {
    let path: string;
    if (r === true) {
      const last = listCheckpoints(dir).pop();
      if (!last) throw new Error(`${name}: resume_from_checkpoint is true but ${dir} has no checkpoint to resume from (no checkpoint-N folder with trainer_state.json)`);
      path = last.path;
    } else {
      path = r;
      if (!existsSync(join(path, 'trainer_state.json'))) throw new Error(`${name}: resume_from_checkpoint ${path} is not a complete checkpoint (no trainer_state.json)`);
    }
    return { resumeFrom: path };
  }
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length) {
      if (!args.overwrite_output_dir) {
        const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? `, … (${entries.length} entries)` : '');
        throw new Error(`${name}: output_dir ${dir} is not empty (${shown}); set overwrite_output_dir to replace that run, resume_from_checkpoint to continue it, or choose another folder`);
      }
      const doomed = entries.filter((e) => ARTIFACT.test(e)).map((e) => join(dir, e));
      for (const i of inputs) {
        if (!i) continue;
        const ip = canonicalPath(i.path);
        for (const d of doomed) {
          const dp = canonicalPath(d);
          if (ip === dp || ip.startsWith(dp + '/')) throw new Error(`${name}: overwrite_output_dir would delete ${i.what} (${i.path}); choose another output_dir`);
        }
      }
      for (const d of doomed) rmSync(d, { recursive: true, force: true });
    }
  }
  return { resumeFrom: null };
}

/**
 * The options of this run that differ from those saved with the checkpoint (options that only steer logging,
 * saving and evaluation may differ). Empty for checkpoints written before settings were saved.
 */
export function settingsDiff(saved: Record<string, unknown> | undefined, now: Record<string, unknown>): string[] {
  if (!saved) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(now)) {
    if (RUN_CONTROL_OPTIONS.has(k) || typeof v === 'function') continue;
    if (!(k in saved)) continue;
    if (JSON.stringify(saved[k]) !== JSON.stringify(v)) out.push(`${k}: checkpoint ${JSON.stringify(saved[k])}, now ${JSON.stringify(v)}`);
  }
  return out;
}

/** Reads a checkpoint's trainer_state.json. */
export function readTrainerState(checkpoint: string): TrainerState {
  return readJsonFile(join(checkpoint, 'trainer_state.json'), 'trainer_state.json') as TrainerState;
}

/**
 * Cuts metrics.jsonl back to the records of steps <= `step` (what the resumed run will log again is removed), so
 * the log of a resumed run reads like one uninterrupted run. Written atomically.
 */
export function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as { step?: unknown };
      if (typeof r.step === 'number' && r.step > step) continue;
    } catch {
      continue; // a torn last line from a crash
    }
    kept.push(line);
  }
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, kept.length ? kept.join('\n') + '\n' : '');
  renameSync(tmp, path);
}
