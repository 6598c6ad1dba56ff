// `alignkit sft|reward|dpo|ppo|rloo|grpo --config run.yaml [--key value ...]`: one command per trainer, its
// options the trainer's run table (TRL's names), its --help grouped as TRL groups them.
import type { Command } from '../options/command.js';
import { NOT_IMPLEMENTED } from './args.js';
import { DATA_FIELDS, DATA_REFUSED } from './data-args.js';
import { MODEL_FIELDS } from './model-args.js';
import { TRAINERS, type TrainerKind, runFields, runTraining } from './run.js';

function trainerCommand(kind: TrainerKind): Command {
  const e = TRAINERS[kind];
  const groups = [
    { title: 'model (TRL ModelConfig)', fields: MODEL_FIELDS },
    { title: 'data', fields: DATA_FIELDS },
    ...(Object.keys(e.extras).length ? [{ title: 'run', fields: e.extras }] : []),
    { title: `${e.spec.name} (TRL's names and defaults)`, fields: e.spec.fields },
  ];
  return {
    name: kind,
    summary: e.summary,
    options: runFields(kind),
    groups,
    style: 'snake',
    config: true,
    refused: { ...NOT_IMPLEMENTED, ...DATA_REFUSED },
    details: `Options may come from --config (YAML, TRL's names) and flags; see docs/trainers.md. Metrics go to <output_dir>/metrics.jsonl.`,
    async run(ctx) {
      const r = await runTraining(kind, ctx.given, { locate: ctx.locate, handleInterrupt: true });
      ctx.err.write(`${kind}: ${r.globalStep} steps; model saved to ${r.output_dir}\n`);
      ctx.out.write(JSON.stringify({ train: r.metrics, eval: r.eval }) + '\n');
      return 0;
    },
  };
}

export const TRAINER_COMMANDS: Command[] = (Object.keys(TRAINERS) as TrainerKind[]).map(trainerCommand);
