// A Hugging Face model directory → one GGUF file (what `alignkit export gguf` runs): checks the paths, reads
// config.json, the weights (a PEFT adapter directory is merged into its base model first) and the tokenizer files,
// maps the config onto llama.cpp's architecture (GPT-2 → gpt2, Llama/Mistral → llama, Qwen2 → qwen2) and writes
// the file with gguf.ts. Every refusal names the path or the config field.
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadCheckpoint } from './checkpoint.js';
import { type HfConfig, readConfig } from './config.js';
import { writeGguf, type GgufDtype, type GgufModelConfig, type GgufTensor, type WriteGgufResult } from './gguf.js';
import { readJsonFile } from './json-file.js';
import { loadPretrained } from './pretrained.js';

interface ExportGgufOptions {
  /** A model directory (config.json + model.safetensors or shards), or a PEFT adapter directory (merged on export). */
  model: string;
  /** The GGUF file to write (replaced atomically; its folder must exist). */
  out: string;
  /** 'f32' (default, lossless) or 'f16' (matrices rounded to half precision; 1-D tensors stay f32). */
  dtype?: GgufDtype;
  /** A folder holding tokenizer.json (+ tokenizer_config.json, chat_template.jinja), or a tokenizer.json; default: the model directory (for an adapter, then its base model's). */
  tokenizer?: string;
  /** general.name; default the model directory's name. */
  name?: string;
}

interface ExportGgufResult extends WriteGgufResult {
  /** The tokenizer.json written into the file. */
  tokenizerPath: string;
  /** Things the file cannot express that alignkit refuses or handles otherwise (the CLI prints them). */
  warnings: string[];
}

function fail(msg: string): never {
  throw new Error(`export gguf: ${msg}`);
}

/** A directory that must exist and be a directory, named `what` in errors. */
function checkDir(path: string, what: string): string {
  if (typeof path !== 'string' || path === '') fail(`${what} must be a directory path, got ${JSON.stringify(path)}`);
  if (!existsSync(path)) fail(`cannot read ${what} ${path}: no such file or directory`);
  if (!statSync(path).isDirectory()) fail(`${what} ${path} is a file, not a directory`);
  return path;
}

/** base_model_name_or_path of an adapter directory, resolved as loadPretrained resolves it. */
function adapterBase(dir: string): string {
  const raw = readJsonFile(join(dir, 'adapter_config.json'), 'adapter_config.json') as { base_model_name_or_path?: unknown };
  const base = raw.base_model_name_or_path;
  if (typeof base !== 'string' || base === '') fail(`${join(dir, 'adapter_config.json')}: base_model_name_or_path is not set, so the base model is unknown`);
  return existsSync(base) ? base : resolve(dir, base);
}

/** The tokenizer.json to embed: the option, else the first of `dirs` that holds one. */
function findTokenizer(opt: string | undefined, dirs: string[]): string {
  if (opt !== undefined) {
    if (typeof opt !== 'string' || opt === '') fail(`tokenizer must be a path, got ${JSON.stringify(opt)}`);
    if (!existsSync(opt)) fail(`cannot read tokenizer ${opt}: no such file or directory`);
    const p = statSync(opt).isDirectory() ? join(opt, 'tokenizer.json') : opt;
    if (!existsSync(p)) fail(`tokenizer folder ${opt} has no tokenizer.json`);
    return p;
  }
  for (const d of dirs) if (existsSync(join(d, 'tokenizer.json'))) return join(d, 'tokenizer.json');
  fail(`no tokenizer.json in ${dirs.join(' or ')}: a GGUF file carries its tokenizer; pass the folder of the model's tokenizer (tokenizer option, --tokenizer)`);
}

/** The real path of an existing file, else its absolute path. */
function canonical(p: string): string {
  return existsSync(p) ? realpathSync(p) : resolve(p);
}

/** Refuses an output path that is a folder, lies in a missing folder, or is one of the files the export reads. */
function checkOut(out: string, inputDirs: string[], tokenizerPath: string): void {
  if (typeof out !== 'string' || out === '') fail(`out must be a file path, got ${JSON.stringify(out)}`);
  if (existsSync(out) && statSync(out).isDirectory()) fail(`out ${out} is a directory; give the path of the .gguf file to write`);
  const folder = dirname(resolve(out));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) fail(`cannot write ${out}: folder ${folder} does not exist`);
  const target = canonical(out);
  // the inputs: every file of the model (and base, tokenizer) folders but earlier .gguf exports, and the tokenizer
  const inputs = [tokenizerPath];
  for (const d of inputDirs) for (const f of readdirSync(d)) if (!f.endsWith('.gguf') && statSync(join(d, f)).isFile()) inputs.push(join(d, f));
  for (const f of inputs) if (canonical(f) === target) fail(`out ${out} is the input file ${f}; write the GGUF file elsewhere`);
}

/** The writer's config for a parsed config.json, or an error naming what llama.cpp cannot run. */
function ggufConfigFor(c: HfConfig, source: string): { config: GgufModelConfig; warnings: string[] } {
  if (c.task !== 'causal-lm') fail(`${source}: ${c.architecture} is a sequence-classification (reward) model; GGUF export writes causal language models`);
  const m = c.model;
  const common = {
    vocabSize: m.vocabSize,
    hiddenSize: m.hiddenSize,
    numLayers: m.numLayers,
    numHeads: m.numHeads,
    numKvHeads: m.numKvHeads,
    headDim: m.headDim,
    intermediateSize: m.intermediateSize,
    maxPositions: m.maxPositions,
    normEps: m.normEps,
    tieWordEmbeddings: m.tieWordEmbeddings,
    bosTokenId: m.bosTokenId,
    eosTokenId: m.eosTokenId,
    padTokenId: m.padTokenId,
  };
  // (config.ts already refuses GPT-2 attention scaling other than 1/sqrt(head_dim) and RoPE scaling)
  if (m.arch === 'gpt2') return { config: { architecture: 'gpt2', ...common, activation: m.activation === 'gelu_new' ? 'gelu_tanh' : m.activation }, warnings: [] };
  const warnings: string[] = [];
  if (c.slidingWindow !== null) {
    warnings.push(`${source}: sliding_window ${c.slidingWindow} is not written: llama.cpp runs full attention, as alignkit does (identical for sequences up to the window)`);
  }
  return { config: { architecture: c.modelType === 'qwen2' ? 'qwen2' : 'llama', ...common, ropeTheta: m.ropeTheta }, warnings };
}

function readJsonIfExists(path: string): Record<string, unknown> | null {
  return existsSync(path) ? (readJsonFile(path, basename(path)) as Record<string, unknown>) : null;
}

/** Exports the model directory `model` to the GGUF file `out`; see ExportGgufOptions. */
export function exportGguf(opts: ExportGgufOptions): ExportGgufResult {
  const dir = checkDir(opts.model, 'model directory');
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') fail(`dtype must be 'f32' or 'f16', got ${JSON.stringify(dtype)}`);
  const hasConfig = existsSync(join(dir, 'config.json'));
  const isAdapter = !hasConfig && existsSync(join(dir, 'adapter_config.json'));
  if (!hasConfig && !isAdapter) fail(`${dir} has no config.json (a model directory holds config.json and model.safetensors; a LoRA adapter directory adapter_config.json)`);
  const base = isAdapter ? checkDir(adapterBase(dir), `base model of ${join(dir, 'adapter_config.json')}`) : null;
  const modelDirs = base ? [dir, base] : [dir];
  const configPath = join(base ?? dir, 'config.json');
  const { config, warnings } = ggufConfigFor(readConfig(configPath), configPath);
  const tokenizerPath = findTokenizer(opts.tokenizer, modelDirs);
  checkOut(opts.out, opts.tokenizer !== undefined && statSync(opts.tokenizer).isDirectory() ? [...modelDirs, opts.tokenizer] : modelDirs, tokenizerPath);

  // the weights: a model directory as stored; an adapter directory merged into its base (views of the live model)
  let tensors: Map<string, GgufTensor>;
  let dispose = () => {};
  if (isAdapter) {
    const p = loadPretrained(dir);
    p.model.mergeLora();
    tensors = p.model.stateDict();
    dispose = () => p.model.dispose();
  } else {
    tensors = loadCheckpoint(dir).weights;
  }
  try {
    const tokDir = dirname(tokenizerPath);
    const tokenizer = readJsonFile(tokenizerPath, 'tokenizer.json');
    const tokenizerConfig = readJsonIfExists(join(tokDir, 'tokenizer_config.json'));
    const templatePath = join(tokDir, 'chat_template.jinja');
    const chatTemplate = existsSync(templatePath) ? readFileSync(templatePath, 'utf8') : null;
    const res = writeGguf(opts.out, { config, tensors, tokenizer, tokenizerConfig, chatTemplate, dtype, name: opts.name ?? basename(resolve(dir)) });
    return { ...res, tokenizerPath, warnings };
  } finally {
    dispose();
  }
}
