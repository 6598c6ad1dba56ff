// The engine thread of `alignkit serve`: loads the served models (each base model once, however many names and
// LoRA adapters use it) and runs the continuous-batching loop (batcher.ts). The engine is native and synchronous,
// so it runs in a worker_threads Worker: the HTTP thread stays responsive while a step computes, and messages
// (new requests, cancellations) are read between steps.
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { loadAdapter } from '../io/peft.js';
import { eosTokenIds, loadPretrained } from '../io/pretrained.js';
import { readJsonFile } from '../io/json-file.js';
import type { Transformer } from '../models/transformer.js';
import { type BaseBatch, Batcher } from './batcher.js';
import { SeqCache, ServeModel } from './forward.js';
import type { EngineInit, FromEngine, LoadedModel, ModelSpec, ToEngine } from './protocol.js';

interface LoadedBase {
  batch: BaseBatch;
  transformer: Transformer;
  eos: number[];
  dir: string;
}

/** The base folder of a PEFT adapter folder, resolved as loadPretrained resolves it; null for a full model. */
export function adapterBaseDir(dir: string): string | null {
  if (existsSync(join(dir, 'config.json')) || !existsSync(join(dir, 'adapter_config.json'))) return null;
  const raw = readJsonFile(join(dir, 'adapter_config.json'), 'adapter_config.json') as { base_model_name_or_path?: unknown };
  const base = raw.base_model_name_or_path;
  if (typeof base !== 'string' || !base) throw new Error(`${dir}/adapter_config.json: base_model_name_or_path is not set, so the base model is unknown`);
  const b = existsSync(base) ? base : resolve(dir, base);
  if (!existsSync(b)) throw new Error(`${dir}/adapter_config.json: base model ${base} not found`);
  return b;
}

/** Loads every model of the list, sharing bases; returns the batcher's table and what the server needs to know. */
export function loadModels(specs: readonly ModelSpec[]): { table: Map<string, { base: BaseBatch; adapter: number }>; info: LoadedModel[]; bases: LoadedBase[] } {
  const bases = new Map<string, LoadedBase>();
  const base = (dir: string): LoadedBase => {
    const key = realpathSync(dir);
    let b = bases.get(key);
    if (!b) {
      if (!existsSync(join(dir, 'config.json'))) throw new Error(`${dir}: no config.json (a model folder) and no adapter_config.json (a PEFT adapter folder)`);
      const p = loadPretrained(dir);
      if (p.hfConfig.task === 'sequence-classification') {
        p.model.dispose();
        p.score?.dispose();
        throw new Error(`${dir} is a sequence-classification (reward) model; serve a causal language model`);
      }
      b = { batch: { model: new ServeModel(p.model), waiting: [], active: [] }, transformer: p.model, eos: eosTokenIds(p, undefined).ids, dir };
      bases.set(key, b);
    }
    return b;
  };
  const table = new Map<string, { base: BaseBatch; adapter: number }>();
  const info: LoadedModel[] = [];
  for (const s of specs) {
    if (table.has(s.name)) throw new Error(`model name ${JSON.stringify(s.name)} is given twice`);
    const bdir = adapterBaseDir(s.dir);
    const b = base(bdir ?? s.dir);
    let adapter = -1;
    if (bdir !== null) {
      loadAdapter(s.dir, b.transformer);
      adapter = b.batch.model.addAdapters(b.transformer);
    }
    table.set(s.name, { base: b.batch, adapter });
    const c = b.batch.model.config;
    info.push({ name: s.name, dir: s.dir, baseDir: b.dir, adapter: bdir !== null, vocabSize: c.vocabSize, contextLength: c.maxPositions, eosIds: b.eos, kvBytesPerToken: SeqCache.bytesPerToken(c) });
  }
  for (const b of bases.values()) b.batch.model.dropOriginals();
  return { table, info, bases: [...bases.values()] };
}

const init = workerData as EngineInit | undefined;
if (parentPort && init?.alignkitServe) {
  const port = parentPort;
  const send = (m: FromEngine) => port.postMessage(m);
  let batcher: Batcher | null = null;
  let bases: LoadedBase[] = [];
  let wake: (() => void) | null = null;
  let shuttingDown = false;
  try {
    const loaded = loadModels(init.models);
    bases = loaded.bases;
    batcher = new Batcher(loaded.table, { maxBatch: init.maxBatch, prefillBudget: init.prefillBudget });
    send({ type: 'ready', models: loaded.info });
  } catch (e) {
    send({ type: 'fatal', error: (e as Error).message });
  }
  port.on('message', (m: ToEngine) => {
    if (!batcher) return;
    if (m.type === 'submit') {
      const err = batcher.submit(m.job);
      if (err) send({ type: 'failed', id: m.job.id, error: err, status: 400 });
    } else if (m.type === 'cancel') batcher.cancel(m.id);
    else if (m.type === 'stop') batcher.stop(m.id, m.choice);
    else if (m.type === 'shutdown') shuttingDown = true;
    wake?.();
  });
  const loop = async (): Promise<void> => {
    while (batcher && !shuttingDown) {
      if (!batcher.hasWork()) {
        await new Promise<void>((r) => (wake = r));
        wake = null;
        continue;
      }
      const { message, failed } = batcher.step();
      for (const f of failed) send({ type: 'failed', id: f.id, error: f.error, status: 500 });
      if (message.started.length || message.tokens.length || message.done.length || message.promptLogprobs.length) send(message);
      // let cancellations and new requests in before the next step
      await new Promise<void>((r) => setImmediate(r));
    }
    batcher?.dispose();
    for (const b of bases) b.batch.model.dispose();
    send({ type: 'closed' });
    port.close();
  };
  if (batcher) void loop();
}
