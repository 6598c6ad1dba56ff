// `alignkit label ...`: serve the labeling page, add annotators, open rounds, export preferences, print statistics.
import { randomInt } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FeedbackDB, type Round, type SampleSettings, StoreError } from './db.js';
import { exportPreferences } from './export.js';
import { InputError, readPairs, readPrompts } from './inputs.js';
import { startServer } from './server.js';
import { computeStats, formatStats } from './stats.js';

export const LABEL_USAGE = `alignkit label — collect human preferences between two responses

usage:
  alignkit label serve --prompts P.jsonl --policy DIR [--policy-b DIR] [--db F] [--port N]
  alignkit label serve --pairs PAIRS.jsonl [--db F] [--port N]
  alignkit label serve [--db F]                     serve the database's latest round
  alignkit label add-annotator NAME [--db F]         prints the annotator's token (once)
  alignkit label annotators [--db F]
  alignkit label round --policy DIR [--policy-b DIR] [--prompts P.jsonl] [--db F]
  alignkit label round --pairs PAIRS.jsonl [--db F]
  alignkit label export --out prefs.jsonl [--round N] [--db F]
  alignkit label stats [--round N] [--json] [--db F]

options:
  --db F               feedback database (default feedback.sqlite; created if absent)
  --port N             port on 127.0.0.1 (default 8765; 0 picks a free one)
  --agreement X        fraction of a new round's pairs labeled by two annotators (default 0)
  --max-new-tokens N   response length when sampling (default 256)
  --temperature T      sampling temperature (default 1)
  --top-p P, --top-k K sampling filters (default off)
  --seed S             sampling seed of a new round (default random; stored with the round)
  --lookahead N        pairs to keep sampled ahead of the annotators (default 8)
  --lease-minutes M    an unanswered pair goes to someone else after M minutes (default 30)

prompts.jsonl lines: {"prompt": "text" | [{"role", "content"}...], "id"?: ...}
pairs.jsonl lines:   {"prompt": ..., "response_a": "...", "response_b": "...", "id"?, "source_a"?, "source_b"?}
`;

const OPTIONS = {
  db: { type: 'string', default: 'feedback.sqlite' },
  prompts: { type: 'string' },
  policy: { type: 'string' },
  'policy-b': { type: 'string' },
  pairs: { type: 'string' },
  port: { type: 'string' },
  agreement: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  seed: { type: 'string' },
  lookahead: { type: 'string' },
  'lease-minutes': { type: 'string' },
  out: { type: 'string' },
  round: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
}

/** Which options each subcommand takes (anything else is refused, so a typo is not silently ignored). */
const TAKES: Record<string, string[]> = {
  serve: ['db', 'prompts', 'policy', 'policy-b', 'pairs', 'port', 'agreement', 'max-new-tokens', 'temperature', 'top-p', 'top-k', 'seed', 'lookahead', 'lease-minutes'],
  'add-annotator': ['db'],
  annotators: ['db'],
  round: ['db', 'prompts', 'policy', 'policy-b', 'pairs', 'agreement', 'max-new-tokens', 'temperature', 'top-p', 'top-k', 'seed'],
  export: ['db', 'out', 'round'],
  stats: ['db', 'round', 'json'],
};

export class UsageError extends Error {}

function number(v: string | undefined, name: string, o: { int?: boolean; min?: number; max?: number; exclusiveMin?: boolean }): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  const bad =
    v.trim() === '' || !Number.isFinite(x) || (o.int && !Number.isInteger(x)) || (o.min !== undefined && (o.exclusiveMin ? x <= o.min : x < o.min)) || (o.max !== undefined && x > o.max);
  if (bad) {
    const range = `${o.min !== undefined ? `${o.exclusiveMin ? '>' : '>='} ${o.min}` : ''}${o.min !== undefined && o.max !== undefined ? ' and ' : ''}${o.max !== undefined ? `<= ${o.max}` : ''}`;
    throw new UsageError(`--${name} must be ${o.int ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got ${JSON.stringify(v)}`);
  }
  return x;
}

function policyDir(dir: string, flag: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new UsageError(`--${flag} ${dir}: no such checkpoint folder`);
  for (const f of ['config.json', 'tokenizer.json'])
    if (!existsSync(join(abs, f))) throw new UsageError(`--${flag} ${dir}: ${f} is missing (a policy folder needs the model and its tokenizer)`);
  return abs;
}

function settingsOf(v: Values): SampleSettings {
  return {
    maxNewTokens: number(v['max-new-tokens'], 'max-new-tokens', { int: true, min: 1 }) ?? 256,
    temperature: number(v.temperature, 'temperature', { min: 0 }) ?? 1,
    topP: number(v['top-p'], 'top-p', { min: 0, max: 1, exclusiveMin: true }),
    topK: number(v['top-k'], 'top-k', { int: true, min: 1 }),
    seed: number(v.seed, 'seed', { int: true, min: 0, max: 0xffffffff }) ?? randomInt(0, 2 ** 31),
  };
}

/** Whether the command line names where a round's pairs come from. */
function hasSource(v: Values): boolean {
  return v.pairs !== undefined || v.policy !== undefined || v['policy-b'] !== undefined || v.prompts !== undefined;
}

/** Opens a round from the command line (the prompts default to those of the previous round). */
function openRoundFromArgs(store: FeedbackDB, v: Values, previous: Round | null): Round {
  const agreement = number(v.agreement, 'agreement', { min: 0, max: 1 }) ?? 0;
  if (v.pairs !== undefined) {
    if (v.policy !== undefined || v['policy-b'] !== undefined || v.prompts !== undefined) throw new UsageError('--pairs takes ready-made pairs: leave out --policy, --policy-b and --prompts');
    const input = resolve(v.pairs);
    return store.openRound({ source: 'pairs', input, agreement, pairs: readPairs(input) });
  }
  if (v.policy === undefined) throw new UsageError('name a --policy checkpoint (with --prompts) or a --pairs file');
  const policy = policyDir(v.policy, 'policy');
  const policyB = v['policy-b'] === undefined ? null : policyDir(v['policy-b'], 'policy-b');
  let input: string, prompts;
  if (v.prompts !== undefined) {
    input = resolve(v.prompts);
    prompts = readPrompts(input);
  } else {
    const from = previous ? [...(store.rounds())].reverse().find((r) => r.source === 'policy') : undefined;
    if (!from) throw new UsageError('--prompts is needed (no earlier round to take prompts from)');
    input = from.input;
    prompts = store.promptsOf(from.id);
  }
  return store.openRound({ source: 'policy', policy, policyB, input, agreement, settings: settingsOf(v), prompts });
}

function describe(r: Round): string {
  if (r.source === 'pairs') return `round ${r.id}: ready-made pairs from ${r.input}`;
  return `round ${r.id}: ${r.policyB ? `${r.policy} vs ${r.policyB}` : `two samples of ${r.policy}`}, prompts from ${r.input}`;
}

function sameSource(r: Round, v: Values): boolean {
  if (v.pairs !== undefined) return r.source === 'pairs' && r.input === resolve(v.pairs);
  return (
    r.source === 'policy' &&
    v.policy !== undefined &&
    r.policy === resolve(v.policy) &&
    r.policyB === (v['policy-b'] === undefined ? null : resolve(v['policy-b'])) &&
    (v.prompts === undefined || r.input === resolve(v.prompts))
  );
}

async function serve(v: Values, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const port = number(v.port, 'port', { int: true, min: 0, max: 65535 }) ?? 8765;
  const lookahead = number(v.lookahead, 'lookahead', { int: true, min: 1 });
  const lease = number(v['lease-minutes'], 'lease-minutes', { min: 0, exclusiveMin: true });
  const store = FeedbackDB.open(v.db!);
  try {
    let round = store.latestRound();
    if (!round) {
      if (!hasSource(v)) throw new UsageError(`${store.path} has no round yet: pass --prompts with --policy, or --pairs`);
      round = openRoundFromArgs(store, v, null);
      err.write(`opened ${describe(round)}\n`);
    } else if (hasSource(v) && !sameSource(round, v)) {
      throw new UsageError(
        `${store.path}: the latest round is ${describe(round)}; to label a newer policy open a new round (alignkit label round --db ${v.db} --policy DIR), then serve`,
      );
    }
  } catch (e) {
    store.close();
    throw e;
  }
  const log = (line: string) => err.write(`[label] ${line}\n`);
  const server = await startServer({ store, port, lookahead, leaseMs: lease === undefined ? undefined : lease * 60_000, log });
  const round = store.latestRound()!;
  out.write(`alignkit label: serving ${describe(round)}\nlistening on ${server.url}\n`);
  return new Promise<number>((resolveExit) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(() => {
        store.close();
        resolveExit(0);
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs `alignkit label <argv>`; returns the exit code. */
export async function labelMain(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  try {
    const { values: v, positionals } = parse(argv);
    const [sub, ...rest] = positionals;
    if (v.help || !sub) {
      out.write(LABEL_USAGE);
      return sub || v.help ? 0 : 1;
    }
    const takes = TAKES[sub];
    if (!takes) throw new UsageError(`unknown subcommand '${sub}' (serve, add-annotator, annotators, round, export, stats)`);
    for (const [k, val] of Object.entries(v)) {
      if (k === 'help' || val === undefined || (k === 'db' && val === OPTIONS.db.default) || (k === 'json' && val === false)) continue;
      if (!takes.includes(k)) throw new UsageError(`'label ${sub}' does not take --${k}`);
    }
    const wantArgs = sub === 'add-annotator' ? 1 : 0;
    if (rest.length !== wantArgs) throw new UsageError(sub === 'add-annotator' ? 'usage: alignkit label add-annotator NAME [--db F]' : `'label ${sub}' takes no positional arguments (got ${rest.join(' ')})`);

    if (sub === 'serve') return await serve(v, out, err);
    const store = FeedbackDB.open(v.db!);
    try {
      switch (sub) {
        case 'add-annotator': {
          const { token } = store.addAnnotator(rest[0]!);
          out.write(`${token}\n`);
          err.write(`annotator ${JSON.stringify(rest[0])} added to ${store.path}; the token above is shown only this once (only its hash is stored)\n`);
          return 0;
        }
        case 'annotators':
          for (const a of store.annotators()) out.write(`${a.name}\n`);
          return 0;
        case 'round': {
          if (!hasSource(v)) throw new UsageError('name a --policy checkpoint (with --prompts, or the previous round\'s prompts) or a --pairs file');
          const r = openRoundFromArgs(store, v, store.latestRound());
          out.write(`opened ${describe(r)}\n`);
          err.write('a running server picks the new round up within a second; annotators get its pairs from then on\n');
          return 0;
        }
        case 'export': {
          if (v.out === undefined) throw new UsageError('--out FILE is needed');
          const round = number(v.round, 'round', { int: true, min: 1 });
          if (round !== undefined && !store.round(round)) throw new UsageError(`${store.path} has no round ${round}`);
          const c = exportPreferences(store, resolve(v.out), round);
          err.write(`wrote ${c.written} preference pairs to ${v.out}; left out ${c.ties} ties and ${c.bothBad} both-bad labels\n`);
          return 0;
        }
        case 'stats': {
          const round = number(v.round, 'round', { int: true, min: 1 });
          const s = computeStats(store, round);
          out.write(v.json ? JSON.stringify(s, null, 2) + '\n' : formatStats(s));
          return 0;
        }
      }
      return 2;
    } finally {
      store.close();
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof InputError || e instanceof StoreError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(`alignkit label: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}
