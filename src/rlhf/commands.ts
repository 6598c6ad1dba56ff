// `alignkit rlhf --config rlhf.yaml`: RLHF in rounds of fresh human feedback.
import type { Command } from '../options/command.js';
import { UsageError } from '../options/command.js';
import { RLHF_FIELDS, type RlhfOptions, checkRlhfOptions, runRlhf } from './loop.js';

export const RLHF_COMMAND: Command = {
  name: 'rlhf',
  summary: 'RLHF in rounds: the newest policy samples pairs, people (or label simulate) compare them, reward model, PPO, repeat',
  options: RLHF_FIELDS,
  style: 'snake',
  config: true,
  details:
    'Annotators label at the printed URL (alignkit label add-annotator NAME --db DB gives each a token). Rounds land in round-1/, round-2/, …; a restart resumes at the unfinished round. See docs/rlhf.md.',
  async run(ctx) {
    const v = ctx.values as RlhfOptions;
    try {
      checkRlhfOptions(v, ctx.locate);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const r = await runRlhf(v, { log: (s) => ctx.err.write(s + '\n') });
    ctx.out.write(JSON.stringify(r) + '\n');
    return 0;
  },
};
