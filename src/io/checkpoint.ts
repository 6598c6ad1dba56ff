// State dicts as plain float32 arrays: load a Hugging Face checkpoint folder (model.safetensors or sharded with
// model.safetensors.index.json) upcasting every tensor, save one as F32/F16/BF16 (sharded past a size limit),
// and load/save a whole checkpoint folder (config.json + weights + generation_config.json) as plain arrays.
// Memory: loading holds the float32 results plus one conversion buffer of at most 4 MiB.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type HfConfig, readConfig, writeConfig } from './config.js';
import { readGenerationConfig, writeGenerationConfig, type GenerationConfig } from './generation-config.js';
import { checkParameters, normalizeParameterNames, reconcileConfigWithWeights } from './hf-names.js';
import { INDEX_FILE, SINGLE_FILE, readShardIndex, writeShardedSafetensors, type SaveResult } from './sharded.js';
import { numel, SafetensorsReader, type WritableEntry } from './safetensors.js';

export interface Float32Entry {
  shape: number[];
  data: Float32Array;
}

export type StateDict = Map<string, Float32Entry>;

/** The weight files of a checkpoint folder (or a .safetensors / index file given directly), with which tensors each holds. */
function checkpointFiles(path: string): { files: string[]; weightMap: Map<string, string> | null } {
  if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
  if (!statSync(path).isDirectory()) {
    if (path.endsWith('.index.json')) return shardedFiles(path);
    return { files: [path], weightMap: null };
  }
  // transformers prefers the single file when both are present
  if (existsSync(join(path, SINGLE_FILE))) return { files: [join(path, SINGLE_FILE)], weightMap: null };
  if (existsSync(join(path, INDEX_FILE))) return shardedFiles(join(path, INDEX_FILE));
  const present = readdirSync(path);
  const other = present.filter((f) => /\.(bin|pt|pth|ckpt|gguf)$/.test(f));
  throw new Error(
    `checkpoint ${path}: no ${SINGLE_FILE} or ${INDEX_FILE}` +
      (other.length ? ` (found ${other.join(', ')}: only safetensors checkpoints are supported)` : ` (folder holds: ${present.join(', ') || 'nothing'})`),
  );
}

function shardedFiles(indexPath: string): { files: string[]; weightMap: Map<string, string> } {
  const idx = readShardIndex(indexPath);
  const dir = dirname(indexPath);
  const files = [...new Set(idx.weightMap.values())].map((f) => join(dir, f));
  for (const f of files) if (!existsSync(f)) throw new Error(`shard index ${indexPath}: shard ${f} is missing`);
  const weightMap = new Map([...idx.weightMap].map(([n, f]) => [n, join(dir, f)]));
  return { files, weightMap };
}

/**
 * Loads every tensor of a checkpoint as float32 (F16/BF16/F64/int tensors are converted exactly where float32
 * can hold the value). Sharded checkpoints are checked against their index (every indexed tensor found in its
 * shard, no tensor in two shards). `filter` skips tensors without reading them.
 */
export function loadStateDict(path: string, opts: { filter?: (name: string) => boolean } = {}): StateDict {
  const { files, weightMap } = checkpointFiles(path);
  const out: StateDict = new Map();
  let scratch: Uint8Array | undefined;
  for (const file of files) {
    const r = SafetensorsReader.open(file);
    try {
      for (const name of r.infos.keys()) {
        if (weightMap) {
          const owner = weightMap.get(name);
          if (owner === undefined) throw new Error(`shard ${file} holds "${name}", which the index does not list`);
          if (owner !== file) throw new Error(`shard ${file} holds "${name}", which the index places in ${owner}`);
        }
        if (out.has(name)) throw new Error(`checkpoint ${path}: tensor "${name}" appears twice`);
        if (opts.filter && !opts.filter(name)) continue;
        const t = r.readFloat32(name, scratch);
        scratch = t.scratch;
        out.set(name, { shape: t.shape, data: t.data });
      }
    } finally {
      r.close();
    }
  }
  if (weightMap) {
    for (const [name, file] of weightMap) {
      if (!out.has(name) && (!opts.filter || opts.filter(name))) throw new Error(`shard index lists "${name}" in ${file}, but that shard does not hold it`);
    }
  }
  return out;
}

export type SaveDtype = 'F32' | 'F16' | 'BF16';

export interface SaveOptions {
  /** Stored element type (default F32); F16/BF16 round to nearest even, one tensor at a time. */
  dtype?: SaveDtype;
  /** Shard when the weights pass this many bytes (number or "5GB"; default 5GB). */
  maxShardSize?: number | string;
  /** safetensors metadata; transformers requires format "pt", which is always set. */
  metadata?: Record<string, string>;
}

/** Saves a float32 state dict into `dir` (created if needed) in Hugging Face's layout. */
export function saveStateDict(dir: string, sd: StateDict, opts: SaveOptions = {}): SaveResult {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new Error(`saveStateDict: dtype must be F32, F16 or BF16, got ${String(dtype)}`);
  mkdirSync(dir, { recursive: true });
  const entries = new Map<string, WritableEntry>();
  for (const [name, e] of sd) {
    if (!(e.data instanceof Float32Array)) throw new Error(`saveStateDict: "${name}" must hold a Float32Array`);
    if (e.data.length !== numel(e.shape)) throw new Error(`saveStateDict: "${name}" has shape ${JSON.stringify(e.shape)} but ${e.data.length} values`);
    entries.set(name, { dtype, shape: e.shape, data: e.data });
  }
  return writeShardedSafetensors(dir, entries, { maxShardSize: opts.maxShardSize, metadata: { ...opts.metadata, format: 'pt' } });
}

interface HfCheckpoint {
  config: HfConfig;
  /** Float32 weights under transformers' names (normalised; a tied lm_head is absent: use the embedding). */
  weights: StateDict;
  generation: GenerationConfig | null;
}

/**
 * Loads a pretrained folder: config.json, the weights (normalised names, bias flags taken from the weights,
 * then checked name by name and shape by shape against the config) and generation_config.json if present.
 */
export function loadCheckpoint(dir: string): HfCheckpoint {
  const read = readConfig(dir);
  const weights = normalizeParameterNames(read, loadStateDict(dir));
  const config = { ...read, model: reconcileConfigWithWeights(read.model, weights.keys()) };
  checkParameters(config, weights, `checkpoint ${dir}`);
  return { config, weights, generation: readGenerationConfig(dir) };
}

const DTYPE_NAMES: Record<SaveDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/**
 * Saves a pretrained folder transformers can load: config.json (its dtype set to the stored one), the weights
 * (checked against the config; a tied lm_head is left out as transformers does), generation_config.json if given.
 */
export function saveCheckpoint(dir: string, p: HfCheckpoint, opts: SaveOptions = {}): SaveResult {
  const weights = normalizeParameterNames(p.config, p.weights);
  checkParameters(p.config, weights, 'saveCheckpoint weights');
  const result = saveStateDict(dir, weights, opts);
  writeConfig(dir, { ...p.config, dtype: DTYPE_NAMES[opts.dtype ?? 'F32'] });
  if (p.generation) writeGenerationConfig(dir, p.generation);
  return result;
}
