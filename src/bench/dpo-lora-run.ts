// One configuration of `bench dpo-step --shape qwen2.5-0.5b`, run in its own process so that its peak RSS is its
// own: random weights in Qwen2.5-0.5B's shape, LoRA r=16 on every linear layer, the reference = the same base
// with the adapters off. `node dpo-lora-run.js precision=bf16 T=256 pairs=2 steps=2` prints one JSON line.
import { readFileSync } from 'node:fs';
import { autocast, type Precision } from '../engine/autocast.js';
import { noGrad, tidy } from '../engine/tensor.js';
import { AdamW } from '../engine/optim.js';
import { Random } from '../engine/random.js';
import { llamaConfig, type CausalLMConfig } from '../models/config.js';
import { parameterShapes } from '../models/parameters.js';
import { Transformer } from '../models/transformer.js';
import { completionMask, dpoSigmoidLoss, sequenceLogps, timeSteps } from './dpo-step.js';

export function qwen05Config(layers = 24, vocab = 151936): CausalLMConfig {
  return llamaConfig({
    vocabSize: vocab,
    hiddenSize: 896,
    numLayers: layers,
    numHeads: 14,
    numKvHeads: 2,
    intermediateSize: 4864,
    tieWordEmbeddings: true,
    qkvBias: true,
    ropeTheta: 1e6,
    maxPositions: 32768,
    normEps: 1e-6,
  });
}

/** Random weights (uniform, std 0.02; unit norms, zero biases), filled fast: the benchmark needs the shape, not N(0, σ). */
function randomModel(cfg: CausalLMConfig, seed: number): Transformer {
  const rng = new Random(seed);
  const sd = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  const a = 0.02 * Math.sqrt(3);
  for (const [name, shape] of parameterShapes(cfg)) {
    const n = shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    if (/norm\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < n; i++) data[i] = (rng.uniform() * 2 - 1) * a;
    sd.set(name, { shape, data });
  }
  return Transformer.fromStateDict(cfg, sd).model;
}

export function runLoraStep(
  precision: Precision,
  o: { T: number; pairs: number; steps: number; layers?: number; vocab?: number },
  log: (s: string) => void,
): { tokensPerSecond: number; stepSeconds: number; peakRssMB: number } {
  const cfg = qwen05Config(o.layers, o.vocab);
  const model = randomModel(cfg, 1);
  model.addLora({ r: 16, alpha: 32, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, 2);
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-4 });
  const B = 2 * o.pairs,
    T = o.T;
  const rng = new Random(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  const mask = completionMask(B, T);
  const step = (): number =>
    tidy(() => {
      opt.zeroGrad();
      const loss = autocast(precision, () => {
        // the reference first, as DPOTrainer does: its forward then never overlaps the policy's activations
        const rl = noGrad(() => tidy(() => model.withoutAdapters(() => sequenceLogps(model, ids, B, T, mask))));
        const pol = sequenceLogps(model, ids, B, T, mask);
        return dpoSigmoidLoss(pol, rl, o.pairs, 0.1);
      });
      loss.backward();
      opt.stepOnce();
      return loss.item();
    });
  const med = timeSteps(o.steps, step, log, `alignkit qwen2.5-0.5b-shape LoRA ${precision}`);
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
  opt.dispose();
  model.dispose();
  return { tokensPerSecond: (B * T) / med, stepSeconds: med, peakRssMB: hwm };
}

if (process.argv[1]?.endsWith('dpo-lora-run.js')) {
  const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=', 2) as [string, string]));
  const r = runLoraStep(
    (args.precision ?? 'bf16') as Precision,
    {
      T: Number(args.T ?? 256),
      pairs: Number(args.pairs ?? 2),
      steps: Number(args.steps ?? 2),
      layers: args.layers ? Number(args.layers) : undefined,
      vocab: args.vocab ? Number(args.vocab) : undefined,
    },
    (s) => process.stderr.write(s + '\n'),
  );
  process.stdout.write(JSON.stringify(r) + '\n');
}
