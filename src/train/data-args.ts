// Where a run's data is, under alignkit's names (train_file / eval_file, dataset_path) and TRL's (dataset_name
// with dataset_train_split / dataset_test_split, and the `datasets:` mixture list of {path, data_files, split}),
// so that one YAML file runs under both `alignkit <trainer> --config` and `trl <trainer> --config`. Only local
// files and folders: there is no hub to download from.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DataSource } from '../data/index.js';
import type { NamedInput } from '../io/paths.js';
import { type OptionsOf, f } from '../options/fields.js';

/** One entry of TRL's dataset mixture (DatasetConfig). */
interface MixtureEntry {
  path: string;
  data_dir?: string | null;
  data_files?: string | string[] | Record<string, string | string[]> | null;
  split: string;
}

const ENTRY_KEYS = new Set(['path', 'data_dir', 'data_files', 'split', 'name', 'columns']);

function parseMixture(v: unknown): MixtureEntry[] {
  if (!Array.isArray(v)) throw new Error('must be a list of {path, data_files, split} entries');
  return v.map((e, i) => {
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw new Error(`entry ${i}: must be a mapping {path, data_files, split}`);
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!ENTRY_KEYS.has(k)) throw new Error(`entry ${i}: unknown key '${k}' (path, data_dir, data_files, split)`);
    if (o.name !== undefined && o.name !== null) throw new Error(`entry ${i}: name (a hub dataset configuration) is not supported: give local files`);
    if (o.columns !== undefined && o.columns !== null) throw new Error(`entry ${i}: columns is not supported: give files with the format's columns`);
    if (typeof o.path !== 'string' || !o.path) throw new Error(`entry ${i}: path must be a local file or folder, or json with data_files`);
    const split = o.split ?? 'train';
    if (typeof split !== 'string') throw new Error(`entry ${i}: split must be a string`);
    const df = o.data_files;
    const okFiles = (x: unknown) => typeof x === 'string' || (Array.isArray(x) && x.every((s) => typeof s === 'string'));
    if (df !== undefined && df !== null && !okFiles(df) && !(typeof df === 'object' && Object.values(df as object).every(okFiles)))
      throw new Error(`entry ${i}: data_files must be a file, a list of files, or a mapping split: files`);
    if (o.data_dir !== undefined && o.data_dir !== null && typeof o.data_dir !== 'string') throw new Error(`entry ${i}: data_dir must be a folder`);
    return { path: o.path, data_dir: (o.data_dir as string | null | undefined) ?? null, data_files: (df as MixtureEntry['data_files']) ?? null, split };
  });
}

export const DATA_FIELDS = {
  train_file: f.string(null, 'training data: a JSONL or JSON file in one of TRL’s dataset formats', { nullable: true, metavar: 'FILE' }),
  eval_file: f.string(null, 'evaluation data (same format)', { nullable: true, metavar: 'FILE' }),
  dataset_path: f.string(null, 'a data file, or a folder with train.jsonl and test/eval/validation.jsonl', { nullable: true, metavar: 'PATH' }),
  dataset_name: f.string(null, "TRL's dataset: a local file or folder (split files named by dataset_train_split / dataset_test_split)", { nullable: true, metavar: 'PATH' }),
  dataset_train_split: f.string('train', 'the split of dataset_name / datasets used for training'),
  dataset_test_split: f.string('test', 'the split used for evaluation'),
  datasets: f.value<MixtureEntry[] | null>(null, "TRL's dataset mixture: a list of {path, data_files, split} (config file only)", parseMixture, { nullable: true, metavar: 'LIST' }),
  skip_invalid: f.boolean(false, 'skip (and report) invalid records instead of stopping at the first'),
};

type DataArgs = OptionsOf<typeof DATA_FIELDS>;

/** TRL data options alignkit refuses, with the reason. */
export const DATA_REFUSED: Readonly<Record<string, string>> = {
  dataset_config: 'dataset_config names a hub dataset configuration; alignkit reads local files only',
  dataset_streaming: 'local files are streamed line by line already; the option is not needed',
};

/** The files of `split` in a folder: split.jsonl, split-*.jsonl, data/split*.jsonl (Hugging Face's naming). */
function splitFiles(dir: string, split: string): string[] {
  const out: string[] = [];
  for (const base of [dir, join(dir, 'data')]) {
    if (!existsSync(base) || !statSync(base).isDirectory()) continue;
    for (const n of readdirSync(base).sort()) {
      const m = /^(.*)\.(jsonl|json)$/.exec(n);
      if (!m) continue;
      const stem = m[1]!;
      if (stem === split || stem.startsWith(`${split}-`) || stem.startsWith(`${split}_`) || stem.startsWith(`${split}.`)) out.push(join(base, n));
    }
    if (out.length) break;
  }
  return out;
}

function mustExist(p: string, what: string): string {
  if (!existsSync(p)) throw new Error(`${what} ${p}: no such file or folder`);
  return p;
}

function entryFiles(e: MixtureEntry, i: number): string[] {
  const base = e.data_dir ? join(e.path, e.data_dir) : e.path;
  const isBuilder = e.path === 'json' || e.path === 'jsonl';
  const df = e.data_files;
  if (df) {
    const list =
      typeof df === 'string'
        ? [df]
        : Array.isArray(df)
          ? df
          : (() => {
              const x = (df as Record<string, string | string[]>)[e.split];
              if (x === undefined) throw new Error(`datasets entry ${i}: data_files has no '${e.split}' split (it has ${Object.keys(df).join(', ')})`);
              return typeof x === 'string' ? [x] : x;
            })();
    return list.map((p) => mustExist(isBuilder ? p : resolve(base, p), `datasets entry ${i}: data file`));
  }
  if (isBuilder) throw new Error(`datasets entry ${i}: path '${e.path}' needs data_files`);
  mustExist(base, `datasets entry ${i}: path`);
  if (statSync(base).isFile()) return [base];
  const files = splitFiles(base, e.split);
  if (!files.length) throw new Error(`datasets entry ${i}: ${base} has no '${e.split}' split (no ${e.split}.jsonl, ${e.split}-*.jsonl or data/${e.split}*.jsonl)`);
  return files;
}

interface DataSources {
  train: DataSource;
  eval: DataSource | null;
  /** the files read, for output-path checks */
  inputs: NamedInput[];
}

const one = (files: string[]): DataSource => (files.length === 1 ? files[0]! : { files });

/** The train and eval sources a run's data options name (exactly one way of naming them). */
export function dataSources(d: DataArgs, who: string): DataSources {
  const ways = [d.train_file ? 'train_file' : null, d.dataset_path ? 'dataset_path' : null, d.dataset_name ? 'dataset_name' : null, d.datasets ? 'datasets' : null].filter(Boolean);
  if (ways.length > 1) throw new Error(`${who}: give the training data one way: ${ways.join(' and ')} are both set`);
  if (!ways.length) throw new Error(`${who}: no training data: set train_file (a .jsonl or .json file), dataset_path, dataset_name or datasets`);
  const inputs = (files: string[], what: string): NamedInput[] => files.map((p) => ({ what, path: p }));
  if (d.train_file) {
    mustExist(d.train_file, `${who}: train_file`);
    if (d.eval_file) mustExist(d.eval_file, `${who}: eval_file`);
    return { train: d.train_file, eval: d.eval_file, inputs: inputs([d.train_file, ...(d.eval_file ? [d.eval_file] : [])], 'a data file') };
  }
  if (d.datasets) {
    const train: string[] = [],
      test: string[] = [];
    d.datasets.forEach((e, i) => {
      const files = entryFiles(e, i);
      if (e.split === d.dataset_train_split) train.push(...files);
      else if (e.split === d.dataset_test_split) test.push(...files);
      else throw new Error(`${who}: datasets entry ${i}: split '${e.split}' is neither dataset_train_split ('${d.dataset_train_split}') nor dataset_test_split ('${d.dataset_test_split}')`);
    });
    if (!train.length) throw new Error(`${who}: datasets has no entry of the '${d.dataset_train_split}' split`);
    const ev = d.eval_file ? [mustExist(d.eval_file, `${who}: eval_file`)] : test;
    return { train: one(train), eval: ev.length ? one(ev) : null, inputs: inputs([...train, ...ev], 'a data file') };
  }
  const p = (d.dataset_path ?? d.dataset_name)!;
  const key = d.dataset_path ? 'dataset_path' : 'dataset_name';
  mustExist(p, `${who}: ${key}`);
  if (!statSync(p).isDirectory()) return { train: p, eval: d.eval_file, inputs: inputs([p, ...(d.eval_file ? [d.eval_file] : [])], 'a data file') };
  const trainSplit = d.dataset_path ? 'train' : d.dataset_train_split;
  const train = splitFiles(p, trainSplit);
  if (!train.length) throw new Error(`${who}: ${key} ${p} has no ${trainSplit}.jsonl or ${trainSplit}.json`);
  let ev: string[] = d.eval_file ? [d.eval_file] : [];
  if (!ev.length) for (const s of d.dataset_path ? ['test', 'eval', 'validation'] : [d.dataset_test_split]) if (!ev.length) ev = splitFiles(p, s);
  return { train: one(train), eval: ev.length ? one(ev) : null, inputs: inputs([...train, ...ev], 'a data file') };
}
