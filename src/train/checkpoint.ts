// Training checkpoints that resume exactly and never half-exist: everything is written into a temporary
// folder that is renamed into place as the last step (a crash leaves only the temporary folder, which resume
// ignores). A checkpoint holds the model in the Hugging Face layout (loadable on its own), the extra trained
// tensors (heads, adapters), the optimiser's moments, and trainer_state.json (step, epoch, data position, RNG).
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Pretrained, savePretrained } from '../io/pretrained.js';
import { readJsonFile, writeJsonFile } from '../io/json-file.js';
import { type WritableEntry, readSafetensors, toFloat32, writeSafetensors } from '../io/safetensors.js';
import type { AdamW } from '../engine/optim.js';
import type { Tensor } from '../engine/tensor.js';

export interface TrainerState {
  global_step: number;
  epoch: number;
  /** the batch source's resumable position */
  data_state: unknown;
  /** the trainer's Random state */
  rng_state: number[];
  /** anything else the trainer needs (e.g. the adaptive KL controller) */
  extra?: Record<string, unknown>;
  /** the run's resolved options, compared on resume (a resumed run must use the same settings) */
  args?: Record<string, unknown>;
}

const STATE = 'trainer_state.json',
  OPT = 'optimizer.safetensors',
  EXTRA = 'extra.safetensors';

function checkpointDir(outputDir: string, step: number): string {
  return join(outputDir, `checkpoint-${step}`);
}

/** Writes checkpoint-<step> atomically; returns its path. */
export function saveTrainingCheckpoint(outputDir: string, state: TrainerState, model: Pretrained | null, extra: Map<string, Tensor>, opt: AdamW): string {
  const final = checkpointDir(outputDir, state.global_step);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  if (model) savePretrained(tmp, model);
  if (extra.size) {
    const e = new Map<string, WritableEntry>();
    for (const [n, t] of extra) e.set(n, { dtype: 'F32', shape: [...t.shape], data: t.toArray() });
    writeSafetensors(join(tmp, EXTRA), e, { format: 'pt' });
  }
  const os = opt.getState();
  const o = new Map<string, WritableEntry>();
  os.m.forEach((m, i) => o.set(`m.${i}`, { dtype: 'F32', shape: [m.length], data: m }));
  os.v.forEach((v, i) => o.set(`v.${i}`, { dtype: 'F32', shape: [v.length], data: v }));
  writeSafetensors(join(tmp, OPT), o, { step: String(os.step) });
  writeJsonFile(join(tmp, STATE), state, false);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final); // the commit point
  return final;
}

/** Complete checkpoints in outputDir, oldest first. */
export function listCheckpoints(outputDir: string): { step: number; path: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), path: join(outputDir, m[0]) }))
    .filter((c) => existsSync(join(c.path, STATE)))
    .sort((a, b) => a.step - b.step);
}

/** Removes all but the newest `keep` checkpoints (keep 0 = keep all). */
export function pruneCheckpoints(outputDir: string, keep: number): void {
  if (keep <= 0) return;
  const all = listCheckpoints(outputDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) rmSync(c.path, { recursive: true, force: true });
}

/**
 * Restores tensors and optimiser from a checkpoint folder into the live objects (which must have the same
 * shapes), and returns its trainer state.
 */
export function loadTrainingCheckpoint(path: string, params: Map<string, Tensor>, extra: Map<string, Tensor>, opt: AdamW): TrainerState {
  if (!existsSync(join(path, STATE))) throw new Error(`${path} is not a complete checkpoint (no ${STATE})`);
  const state = readJsonFile(join(path, STATE), STATE) as TrainerState;
  const restore = (file: string, into: Map<string, Tensor>): void => {
    if (!into.size) return;
    const { tensors } = readSafetensors(join(path, file));
    for (const [n, t] of into) {
      const e = tensors.get(n);
      if (!e) throw new Error(`${path}/${file}: no tensor '${n}'`);
      const data = toFloat32(e, n);
      if (data.length !== t.size) throw new Error(`${path}/${file}: '${n}' has ${data.length} values, expected ${t.size}`);
      t.data.set(data, t.offset);
    }
  };
  restore('model.safetensors', params);
  restore(EXTRA, extra);
  const { tensors, metadata } = readSafetensors(join(path, OPT));
  const m: Float32Array[] = [],
    v: Float32Array[] = [];
  for (let i = 0; tensors.has(`m.${i}`); i++) {
    m.push(toFloat32(tensors.get(`m.${i}`)!));
    v.push(toFloat32(tensors.get(`v.${i}`)!));
  }
  opt.setState({ step: Number(metadata.step ?? state.global_step), m, v });
  return state;
}
