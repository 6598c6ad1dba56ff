// Small JSON file helpers shared by the config and checkpoint readers/writers: clear errors naming the file,
// and atomic writes in Hugging Face's layout (2-space indent, sorted keys, trailing newline).
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { writeFileAtomic } from './safetensors.js';

/** Parses a JSON file, naming the file in any error; `what` describes it ("config.json"). */
export function readJsonFile(path: string, what = 'JSON file'): unknown {
  if (!existsSync(path)) throw new Error(`${what}: ${path} does not exist`);
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what}: ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A JSON object's keys sorted recursively (what Python's json.dumps(sort_keys=True) writes). */
function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeysDeep((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/**
 * Keys whose values Python holds as floats: an integer value is written with ".0" (10000 → 10000.0) so that
 * Python reads back a float, as it wrote it (JSON.parse cannot tell 10000.0 from 10000).
 */
const FLOAT_KEYS = new Set([
  'rope_theta',
  'rms_norm_eps',
  'layer_norm_epsilon',
  'layer_norm_eps',
  'initializer_range',
  'attention_dropout',
  'resid_pdrop',
  'embd_pdrop',
  'attn_pdrop',
  'summary_first_dropout',
  'hidden_dropout',
  'factor',
  'temperature',
  'top_p',
  'repetition_penalty',
  'length_penalty',
]);

/** JSON text laid out as Python's json.dumps(indent=2) does, with FLOAT_KEYS integers written as floats. */
function stringifyPythonStyle(v: unknown, level = 0, key = ''): string {
  const pad = '  '.repeat(level + 1);
  const end = '  '.repeat(level);
  if (typeof v === 'number') {
    const s = JSON.stringify(v);
    return FLOAT_KEYS.has(key) && /^-?\d+$/.test(s) ? `${s}.0` : s;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => pad + stringifyPythonStyle(x, level + 1, key)).join(',\n')}\n${end}]`;
  }
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, x]) => `${pad}${JSON.stringify(k)}: ${stringifyPythonStyle(x, level + 1, k)}`).join(',\n')}\n${end}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Writes `value` as pretty JSON (sorted keys unless `sort` is false) to `path`, atomically. */
export function writeJsonFile(path: string, value: unknown, sort = true): void {
  const text = stringifyPythonStyle(sort ? sortKeysDeep(value) : value) + '\n';
  const bytes = Buffer.from(text, 'utf8');
  writeFileAtomic(path, (fd) => {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
  });
}
