// Sharded safetensors checkpoints in Hugging Face's layout: model-00001-of-0000N.safetensors files plus
// model.safetensors.index.json = {"metadata": {"total_parameters", "total_size"}, "weight_map": {name: file}}.
// Shards are filled in order, a new one starting when the next tensor would pass maxShardSize; a tensor larger
// than the limit gets a shard of its own (the rule transformers/huggingface_hub use).
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readJsonFile, writeJsonFile } from './json-file.js';
import { dtypeSize, numel, writeSafetensors, type WritableEntry } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** transformers' default max_shard_size ("5GB", decimal units). */
const DEFAULT_MAX_SHARD_SIZE = 5_000_000_000;

interface ShardIndex {
  metadata: Record<string, unknown>;
  /** Tensor name → shard file name (relative to the index's folder). */
  weightMap: Map<string, string>;
}

/** Reads and validates an index file: weight_map must map names to plain file names in the same folder. */
export function readShardIndex(path: string): ShardIndex {
  const json = readJsonFile(path, 'shard index');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`shard index ${path}: not a JSON object`);
  const wm = (json as Record<string, unknown>).weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new Error(`shard index ${path}: missing or invalid "weight_map"`);
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '.' || file === '..') {
      throw new Error(`shard index ${path}: weight_map["${name}"] must be a file name in the same folder, got ${JSON.stringify(file)}`);
    }
    weightMap.set(name, file);
  }
  const md = (json as Record<string, unknown>).metadata;
  return { metadata: md && typeof md === 'object' && !Array.isArray(md) ? (md as Record<string, unknown>) : {}, weightMap };
}

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/** A size in bytes from a number or a string such as "5GB", "500MB", "2GiB" (decimal KB/MB/GB as transformers). */
export function parseSize(size: number | string): number {
  if (typeof size === 'number') {
    if (!(size > 0) || !Number.isFinite(size)) throw new Error(`size must be a positive number of bytes, got ${size}`);
    return Math.floor(size);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(size);
  const unit = UNITS[(m?.[2] || 'B').toUpperCase()];
  if (!m || unit === undefined) throw new Error(`cannot parse size ${JSON.stringify(size)} (examples: 5GB, 500MB, 2GiB, 1000000)`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes > 0)) throw new Error(`size must be positive, got ${JSON.stringify(size)}`);
  return bytes;
}

/** Groups tensors (in the given order) into shards of at most maxBytes each (an oversized tensor alone). */
export function planShards(sizes: Iterable<[string, number]>, maxBytes: number): string[][] {
  const shards: string[][] = [];
  let cur: string[] = [];
  let curBytes = 0;
  for (const [name, bytes] of sizes) {
    if (bytes > maxBytes) {
      shards.push([name]);
      continue;
    }
    if (cur.length > 0 && curBytes + bytes > maxBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(name);
    curBytes += bytes;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

/** "model-00002-of-00005.safetensors". */
function shardFileName(index: number, count: number): string {
  const p = (i: number) => String(i).padStart(5, '0');
  return `model-${p(index + 1)}-of-${p(count)}.safetensors`;
}

const OUR_FILES = /^model(-\d{5}-of-\d{5})?\.safetensors$/;

export interface SaveResult {
  /** The safetensors files written (names inside the folder). */
  files: string[];
  /** The index written, or null for a single file. */
  index: { metadata: { total_parameters: number; total_size: number }; weight_map: Record<string, string> } | null;
}

/**
 * Writes tensors into `dir` as one model.safetensors, or as shards plus the index when they pass maxShardSize
 * (bytes or "5GB"). Every file is written atomically; weight files and the index of an earlier save that the new
 * one does not use are then removed, so the folder never mixes two saves once this returns.
 */
export function writeShardedSafetensors(dir: string, tensors: Map<string, WritableEntry>, opts: { maxShardSize?: number | string; metadata?: Record<string, string> } = {}): SaveResult {
  const maxBytes = parseSize(opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  const bytesOf = (e: WritableEntry) => numel(e.shape) * dtypeSize(e.dtype);
  const groups = planShards(
    [...tensors].map(([name, e]) => [name, bytesOf(e)] as [string, number]),
    maxBytes,
  );
  let result: SaveResult;
  if (groups.length === 1) {
    writeSafetensors(join(dir, SINGLE_FILE), tensors, opts.metadata);
    result = { files: [SINGLE_FILE], index: null };
  } else {
    const files = groups.map((_, i) => shardFileName(i, groups.length));
    const weightMap: Record<string, string> = {};
    let totalSize = 0,
      totalParams = 0;
    groups.forEach((names, i) => {
      const part = new Map<string, WritableEntry>();
      for (const name of names) {
        const e = tensors.get(name)!;
        part.set(name, e);
        weightMap[name] = files[i]!;
        totalSize += bytesOf(e);
        totalParams += numel(e.shape);
      }
      writeSafetensors(join(dir, files[i]!), part, opts.metadata);
    });
    const index = { metadata: { total_parameters: totalParams, total_size: totalSize }, weight_map: weightMap };
    writeJsonFile(join(dir, INDEX_FILE), index);
    result = { files, index };
  }
  const keep = new Set(result.files);
  for (const f of readdirSync(dir)) {
    const stale = (OUR_FILES.test(f) && !keep.has(f)) || (f === INDEX_FILE && result.index === null);
    if (stale && existsSync(join(dir, f))) unlinkSync(join(dir, f));
  }
  return result;
}
