// LoRA adapters in PEFT's layout: adapter_model.safetensors (base_model.model.<module>.lora_A.weight [r, in],
// lora_B.weight [out, r]) and adapter_config.json, so PEFT loads what alignkit trains and the other way round.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoraConfig } from '../nn/lora.js';
import type { Transformer } from '../models/transformer.js';
import { loadStateDict } from './checkpoint.js';
import { type WritableEntry, writeSafetensors } from './safetensors.js';
import { readJsonFile, writeJsonFile } from './json-file.js';

const PREFIX = 'base_model.model.';

export function saveAdapter(dir: string, model: Transformer, cfg: LoraConfig, baseModelNameOrPath = ''): void {
  if (!model.adapters.size) throw new Error('saveAdapter: the model has no LoRA adapters');
  mkdirSync(dir, { recursive: true });
  const sd = new Map<string, WritableEntry>();
  for (const [name, a] of model.adapters) {
    sd.set(`${PREFIX}${name}.lora_A.weight`, { dtype: 'F32', shape: [...a.A.shape], data: a.A.toArray() });
    sd.set(`${PREFIX}${name}.lora_B.weight`, { dtype: 'F32', shape: [...a.B.shape], data: a.B.toArray() });
  }
  writeSafetensors(join(dir, 'adapter_model.safetensors'), sd, { format: 'pt' });
  writeJsonFile(join(dir, 'adapter_config.json'), {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: cfg.r,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout ?? 0,
    target_modules: [...cfg.targetModules],
    bias: 'none',
    fan_in_fan_out: model.config.arch === 'gpt2',
    base_model_name_or_path: baseModelNameOrPath,
    inference_mode: true,
  });
}

/** Reads an adapter directory and attaches its adapters to the model (replacing any it had). */
export function loadAdapter(dir: string, model: Transformer): LoraConfig {
  const raw = readJsonFile(join(dir, 'adapter_config.json'), 'adapter_config.json') as Record<string, unknown>;
  const where = `${dir}/adapter_config.json`;
  if (raw.peft_type !== 'LORA') throw new Error(`${where}: peft_type is ${String(raw.peft_type)}, only LORA is supported`);
  const r = raw.r,
    alpha = raw.lora_alpha;
  if (typeof r !== 'number' || typeof alpha !== 'number') throw new Error(`${where}: r and lora_alpha must be numbers`);
  if (raw.use_rslora || raw.use_dora) throw new Error(`${where}: rsLoRA and DoRA are not supported`);
  let targets = raw.target_modules;
  if (typeof targets === 'string') targets = [targets];
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) throw new Error(`${where}: target_modules must be a list of names`);
  const cfg: LoraConfig = { r, alpha, dropout: typeof raw.lora_dropout === 'number' ? raw.lora_dropout : 0, targetModules: targets as string[] };
  const sd = loadStateDict(join(dir, 'adapter_model.safetensors'));
  for (const a of model.adapters.values()) a.dispose();
  model.adapters.clear();
  model.addLora(cfg);
  for (const [name, a] of model.adapters) {
    for (const [which, t] of [
      ['lora_A', a.A],
      ['lora_B', a.B],
    ] as const) {
      const key = `${PREFIX}${name}.${which}.weight`;
      const e = sd.get(key) ?? sd.get(`${PREFIX}${name}.${which}.default.weight`);
      if (!e) throw new Error(`${dir}/adapter_model.safetensors: missing ${key}`);
      if (e.shape.length !== 2 || e.shape[0] !== t.shape[0] || e.shape[1] !== t.shape[1])
        throw new Error(`${dir}/adapter_model.safetensors: ${key} has shape [${e.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
      t.data.set(e.data);
    }
  }
  return cfg;
}
