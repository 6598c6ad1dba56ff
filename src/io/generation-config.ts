// generation_config.json: the token ids and sampling defaults transformers stores next to a model. Unknown keys
// are kept for writing back; eos_token_id may be one id or a list (any of them ends generation).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeJsonFile } from './json-file.js';

export interface GenerationConfig {
  bosTokenId: number | null;
  /** Every id that ends generation (empty when none is set). */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The sampling settings when set; null means "not set" (the caller's or transformers' default applies). */
  doSample: boolean | null;
  temperature: number | null;
  topP: number | null;
  topK: number | null;
  maxNewTokens: number | null;
  maxLength: number | null;
  repetitionPenalty: number | null;
  /** The JSON read ({} for one made in code); unknown keys are written back. */
  raw: Record<string, unknown>;
}

const FIELDS = {
  doSample: ['do_sample', 'boolean'],
  temperature: ['temperature', 'number'],
  topP: ['top_p', 'number'],
  topK: ['top_k', 'int'],
  maxNewTokens: ['max_new_tokens', 'int'],
  maxLength: ['max_length', 'int'],
  repetitionPenalty: ['repetition_penalty', 'number'],
} as const;

function err(source: string, msg: string): Error {
  return new Error(`generation config ${source}: ${msg}`);
}

function tokenId(raw: Record<string, unknown>, k: string, source: string): number | null {
  const v = raw[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw err(source, `"${k}" must be a token id, got ${JSON.stringify(v)}`);
  return v;
}

/** A generation config that sets only the token ids (every sampling setting null = not set). */
export function idsOnlyGenerationConfig(ids: Pick<GenerationConfig, 'bosTokenId' | 'eosTokenIds' | 'padTokenId'>, raw: Record<string, unknown> = {}): GenerationConfig {
  return { ...ids, doSample: null, temperature: null, topP: null, topK: null, maxNewTokens: null, maxLength: null, repetitionPenalty: null, raw };
}

/** Parses a generation_config.json object; `source` names it in errors. */
export function parseGenerationConfig(json: unknown, source = 'generation_config.json'): GenerationConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw err(source, 'is not a JSON object');
  const raw = json as Record<string, unknown>;
  const eos = raw.eos_token_id;
  let eosTokenIds: number[];
  if (Array.isArray(eos)) {
    if (!eos.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) throw err(source, `"eos_token_id" must hold token ids, got ${JSON.stringify(eos)}`);
    eosTokenIds = eos.slice() as number[];
  } else {
    const one = tokenId(raw, 'eos_token_id', source);
    eosTokenIds = one === null ? [] : [one];
  }
  const out = idsOnlyGenerationConfig({ bosTokenId: tokenId(raw, 'bos_token_id', source), eosTokenIds, padTokenId: tokenId(raw, 'pad_token_id', source) }, raw);
  for (const [field, [key, type]] of Object.entries(FIELDS) as [keyof typeof FIELDS, (typeof FIELDS)[keyof typeof FIELDS]][]) {
    const v = raw[key];
    if (v === undefined || v === null) continue;
    const ok = type === 'boolean' ? typeof v === 'boolean' : type === 'int' ? Number.isInteger(v) && (v as number) >= 0 : typeof v === 'number' && Number.isFinite(v);
    if (!ok) throw err(source, `"${key}" must be ${type === 'int' ? 'a non-negative integer' : `a ${type}`}, got ${JSON.stringify(v)}`);
    (out as unknown as Record<string, unknown>)[field] = v;
  }
  return out;
}

/** Reads generation_config.json from a model directory (or the file itself); null when the file is absent. */
export function readGenerationConfig(dirOrFile: string): GenerationConfig | null {
  const path = existsSync(dirOrFile) && statSync(dirOrFile).isDirectory() ? join(dirOrFile, 'generation_config.json') : dirOrFile;
  if (!existsSync(path)) return null;
  return parseGenerationConfig(readJsonFile(path, 'generation_config.json'), path);
}

/** The JSON transformers reads: original keys kept, typed fields written over them (eos: one id or a list). */
export function generationConfigToJSON(gc: GenerationConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...gc.raw };
  const put = (k: string, v: unknown) => {
    if (v === null) delete out[k];
    else out[k] = v;
  };
  put('bos_token_id', gc.bosTokenId);
  put('pad_token_id', gc.padTokenId);
  put('eos_token_id', gc.eosTokenIds.length === 0 ? null : gc.eosTokenIds.length === 1 && !Array.isArray(gc.raw.eos_token_id) ? gc.eosTokenIds[0] : gc.eosTokenIds.slice());
  for (const [field, [key]] of Object.entries(FIELDS)) put(key, (gc as unknown as Record<string, unknown>)[field]);
  return out;
}

/** Writes generation_config.json into `dir`, atomically. */
export function writeGenerationConfig(dir: string, gc: GenerationConfig): void {
  writeJsonFile(join(dir, 'generation_config.json'), generationConfigToJSON(gc));
}
