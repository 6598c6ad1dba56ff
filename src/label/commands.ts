// `alignkit label ...`: serve the labeling page, add annotators, open rounds, export preferences, print statistics.
import { randomInt } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, UsageError } from '../options/command.js';
import { type OptionsOf, f } from '../options/fields.js';
import { FeedbackDB, type Round, type SampleSettings, StoreError } from './db.js';
import { exportPreferences } from './export.js';
import { InputError, readPairs, readPrompts } from './inputs.js';
import { startServer } from './server.js';
import { goldJudgement } from '../world/gold.js';
import { type SimulatedJudge, simulateAnnotators, simulatedTokens } from './simulate.js';
import { pathToFileURL } from 'node:url';
import { computeStats, formatStats } from './stats.js';

/** Every option of the label commands; each command takes the subset it names. */
const F = {
  db: f.string('feedback.sqlite', 'the feedback database (created if absent)', { metavar: 'FILE' }),
  prompts: f.string(null, 'prompts to sample pairs for: JSONL lines {"prompt": text | messages, "id"?}', { nullable: true, metavar: 'FILE' }),
  policy: f.string(null, 'the policy checkpoint folder that samples both responses (model + tokenizer)', { nullable: true, metavar: 'DIR' }),
  policy_b: f.string(null, 'a second policy for response B', { nullable: true, metavar: 'DIR' }),
  pairs: f.string(null, 'ready-made pairs: JSONL lines {"prompt", "response_a", "response_b", "id"?, "source_a"?, "source_b"?}', { nullable: true, metavar: 'FILE' }),
  port: f.integer(8765, 'port on 127.0.0.1 (0 picks a free one)', { min: 0, max: 65535 }),
  agreement: f.number(0, "fraction of a new round's pairs labelled by two annotators", { min: 0, max: 1 }),
  max_new_tokens: f.integer(256, 'response length when sampling', { min: 1 }),
  temperature: f.number(1, 'sampling temperature', { min: 0 }),
  top_p: f.number(null, 'nucleus sampling mass (default off)', { min: 0, max: 1, exclusiveMin: true, nullable: true }),
  top_k: f.integer(null, 'top-k filtering (default off)', { min: 1, nullable: true }),
  seed: f.integer(null, 'sampling seed of a new round (default random; stored with the round)', { min: 0, max: 0xffffffff, nullable: true }),
  lookahead: f.integer(null, 'pairs to keep sampled ahead of the annotators (default 8)', { min: 1, nullable: true }),
  lease_minutes: f.number(null, 'an unanswered pair goes to someone else after this many minutes (default 30)', { min: 0, exclusiveMin: true, nullable: true }),
  out: f.string('', 'the preference file to write (TRL prompt/chosen/rejected JSONL)', { required: true, metavar: 'FILE' }),
  round: f.integer(null, 'only this round (default: all rounds)', { min: 1, nullable: true }),
  json: f.boolean(false, 'print JSON'),
  allow_host: f.list([], 'another name the server answers to, NAME or NAME:PORT (a reverse proxy, an SSH tunnel on another port)', { repeatable: true, metavar: 'HOST' }),
  trust_proxy: f.boolean(false, 'believe X-Forwarded-Host / -Proto from a proxy on this machine (loopback only)'),
  server: f.string('', "the labeling server's URL (as `label serve` prints it)", { required: true, metavar: 'URL' }),
  annotators: f.integer(3, 'simulated annotators labelling at once (sim-1 … sim-K, marked simulated in the database)', { min: 1 }),
  error_rate: f.number(0.1, 'probability that a simulated annotator flips a decisive judgement', { min: 0, max: 1 }),
  position_bias: f.number(0, "probability of answering 'left' whatever is shown", { min: 0, max: 1 }),
  labels: f.integer(null, 'stop after this many labels in all (default: when nothing is left)', { min: 1, nullable: true }),
  judge: f.string(
    'world',
    "'world' (the lock-picking world's gold judge: its prompts only), or a module whose default export judges a pair: (prompt, shownLeft, shownRight) => 'left' | 'right' | 'tie'",
    { metavar: 'world|FILE.mjs' },
  ),
  aggregate: f.choice(
    ['majority', 'all', 'drop-disagreements'],
    'majority',
    'one row per pair by majority vote (ties of votes dropped and counted), every label, or only pairs whose annotators agree',
  ),
};

type V = OptionsOf<typeof F>;

function policyDir(dir: string, flag: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new UsageError(`--${flag} ${dir}: no such checkpoint folder`);
  for (const f of ['config.json', 'tokenizer.json']) if (!existsSync(join(abs, f))) throw new UsageError(`--${flag} ${dir}: ${f} is missing (a policy folder needs the model and its tokenizer)`);
  return abs;
}

function settingsOf(v: V): SampleSettings {
  return { maxNewTokens: v.max_new_tokens, temperature: v.temperature, topP: v.top_p ?? undefined, topK: v.top_k ?? undefined, seed: v.seed ?? randomInt(0, 2 ** 31) };
}

/** Whether the command line names where a round's pairs come from. */
function hasSource(v: V): boolean {
  return v.pairs !== null || v.policy !== null || v.policy_b !== null || v.prompts !== null;
}

/** Opens a round from the command line (the prompts default to those of the previous round). */
function openRoundFromArgs(store: FeedbackDB, v: V, previous: Round | null): Round {
  const agreement = v.agreement;
  if (v.pairs !== null) {
    if (v.policy !== null || v.policy_b !== null || v.prompts !== null) throw new UsageError('--pairs takes ready-made pairs: leave out --policy, --policy-b and --prompts');
    const input = resolve(v.pairs);
    return store.openRound({ source: 'pairs', input, agreement, pairs: readPairs(input) });
  }
  if (v.policy === null) throw new UsageError('name a --policy checkpoint (with --prompts) or a --pairs file');
  const policy = policyDir(v.policy, 'policy');
  const policyB = v.policy_b === null ? null : policyDir(v.policy_b, 'policy-b');
  if (policyB === null && v.temperature === 0)
    throw new UsageError('--temperature 0 samples the same response twice from one policy (every pair would be two identical texts): use a temperature > 0, or a second policy with --policy-b');
  let input: string, prompts;
  if (v.prompts !== null) {
    input = resolve(v.prompts);
    prompts = readPrompts(input);
  } else {
    const from = previous ? [...store.rounds()].reverse().find((r) => r.source === 'policy') : undefined;
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

function sameSource(r: Round, v: V): boolean {
  if (v.pairs !== null) return r.source === 'pairs' && r.input === resolve(v.pairs);
  return (
    r.source === 'policy' &&
    v.policy !== null &&
    r.policy === resolve(v.policy) &&
    r.policyB === (v.policy_b === null ? null : resolve(v.policy_b)) &&
    (v.prompts === null || r.input === resolve(v.prompts))
  );
}

async function serve(v: V, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const port = v.port;
  const lookahead = v.lookahead ?? undefined;
  const lease = v.lease_minutes ?? undefined;
  const store = FeedbackDB.open(v.db);
  try {
    let round = store.latestRound();
    if (!round) {
      if (!hasSource(v)) throw new UsageError(`${store.path} has no round yet: pass --prompts with --policy, or --pairs`);
      round = openRoundFromArgs(store, v, null);
      err.write(`opened ${describe(round)}\n`);
    } else if (hasSource(v) && !sameSource(round, v)) {
      throw new UsageError(`${store.path}: the latest round is ${describe(round)}; to label a newer policy open a new round (alignkit label round --db ${v.db} --policy DIR), then serve`);
    }
  } catch (e) {
    store.close();
    throw e;
  }
  const log = (line: string) => err.write(`[label] ${line}\n`);
  const server = await startServer({ store, port, lookahead, leaseMs: lease === undefined ? undefined : lease * 60_000, log, allowHosts: v.allow_host, trustProxy: v.trust_proxy });
  const round = store.latestRound()!;
  return new Promise<number>((resolveExit) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close().then(
        () => (store.close(), resolveExit(0)),
        (e: Error) => (err.write(`alignkit label: ${e.message}\n`), store.close(), resolveExit(1)),
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // only now, with the handlers in place: whoever waits for this line may stop the server at once
    out.write(`alignkit label: serving ${describe(round)}\nlistening on ${server.url}\n`);
  });
}

/** The label layer's own errors (bad input files, store refusals) are usage errors of the command. */
async function wrap<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof InputError || e instanceof StoreError) throw new UsageError(e.message);
    throw e;
  }
}

/** Runs fn on the opened database and closes it. */
function withStore<T>(db: string, fn: (store: FeedbackDB) => T): Promise<T> {
  return wrap(() => {
    const store = FeedbackDB.open(db);
    try {
      return fn(store);
    } finally {
      store.close();
    }
  });
}

const pick = <K extends keyof typeof F>(...keys: K[]) => Object.fromEntries(keys.map((k) => [k, F[k]])) as Pick<typeof F, K>;
const SOURCE = ['prompts', 'policy', 'policy_b', 'pairs', 'agreement', 'max_new_tokens', 'temperature', 'top_p', 'top_k', 'seed'] as const;

/** `alignkit label ...`: the labeling app's commands. */
export const LABEL_COMMANDS: Command[] = [
  {
    name: 'label serve',
    summary: 'serve the A-vs-B labeling page for the latest round (opening a first round from --prompts/--policy or --pairs)',
    options: pick('db', ...SOURCE, 'port', 'lookahead', 'lease_minutes', 'allow_host', 'trust_proxy'),
    details: 'docs/labeling.md describes the page, the database and remote annotators.',
    run: (ctx) => wrap(() => serve(ctx.values as V, ctx.out, ctx.err)),
  },
  {
    name: 'label add-annotator',
    summary: 'add an annotator and print their token (shown once; only its hash is stored)',
    args: 'NAME',
    positionals: [1, 1],
    options: pick('db'),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        const name = ctx.positionals[0]!;
        const { token } = store.addAnnotator(name);
        ctx.out.write(`${token}\n`);
        ctx.err.write(`annotator ${JSON.stringify(name)} added to ${store.path}; the token above is shown only this once (only its hash is stored)\n`);
        return 0;
      }),
  },
  {
    name: 'label remove-annotator',
    summary: 'revoke an annotator at once (token and sessions stop working; their labels stay)',
    args: 'NAME',
    positionals: [1, 1],
    options: pick('db'),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        store.removeAnnotator(ctx.positionals[0]!);
        ctx.err.write(`annotator ${JSON.stringify(ctx.positionals[0])} removed from ${store.path}; their labels are kept\n`);
        return 0;
      }),
  },
  {
    name: 'label rotate-token',
    summary: 'give an annotator a new token (the old one and their sessions stop working at once)',
    args: 'NAME',
    positionals: [1, 1],
    options: pick('db'),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        const token = store.rotateToken(ctx.positionals[0]!);
        ctx.out.write(`${token}\n`);
        ctx.err.write(`new token for ${JSON.stringify(ctx.positionals[0])} (shown only this once); the old token and sessions are ended\n`);
        return 0;
      }),
  },
  {
    name: 'label annotators',
    summary: 'list the annotators',
    options: pick('db'),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        for (const a of store.annotators()) ctx.out.write(`${a.name}${a.simulated ? ' (simulated)' : ''}\n`);
        return 0;
      }),
  },
  {
    name: 'label round',
    summary: 'open a new round (a newer policy, or new pairs); a running server picks it up',
    options: pick('db', ...SOURCE),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        const v = ctx.values as V;
        if (!hasSource(v)) throw new UsageError("name a --policy checkpoint (with --prompts, or the previous round's prompts) or a --pairs file");
        const r = openRoundFromArgs(store, v, store.latestRound());
        ctx.out.write(`opened ${describe(r)}\n`);
        ctx.err.write('a running server picks the new round up within a second; annotators get its pairs from then on\n');
        return 0;
      }),
  },
  {
    name: 'label export',
    summary: 'write the labels as TRL preference pairs (prompt, chosen, rejected)',
    options: pick('db', 'out', 'round', 'aggregate'),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        const v = ctx.values as V;
        if (v.round !== null && !store.round(v.round)) throw new UsageError(`${store.path} has no round ${v.round}`);
        const c = exportPreferences(store, resolve(v.out), v.round ?? undefined, v.aggregate);
        ctx.err.write(
          `wrote ${c.written} preference ${v.aggregate === 'all' ? 'rows (one per label)' : 'pairs'} to ${v.out}; left out ${c.ties} ties, ${c.bothBad} both-bad, ${c.identical} pairs with two identical responses` +
            `${v.aggregate === 'all' ? '' : `, ${c.disagreements} pairs whose annotators disagreed`}${c.converted ? `; ${c.converted} text prompts written as user messages (the other prompts are conversations)` : ''}\n` +
            (c.simulated ? `${c.simulated} written ${v.aggregate === 'all' ? 'rows are labels' : 'pairs hold labels'} of SIMULATED annotators (column "simulated": true)\n` : '') +
            (c.hidden
              ? `warning: ${c.hidden} written ${v.aggregate === 'all' ? 'rows' : 'pairs'} hold hidden characters (bidi controls or zero-width; the labeling page showed them as U+ marks)\n`
              : ''),
        );
        return 0;
      }),
  },
  {
    name: 'label simulate',
    summary: 'simulated annotators label through the server’s HTTP API (a judge module plus noise); they are marked simulated',
    options: pick('db', 'server', 'annotators', 'error_rate', 'position_bias', 'labels', 'judge', 'seed'),
    async run(ctx) {
      const v = ctx.values as V;
      const mod =
        v.judge === 'world'
          ? { default: (p: unknown, l: string, r: string) => goldJudgement(typeof p === 'string' ? p : JSON.stringify(p), l, r) }
          : ((await import(pathToFileURL(resolve(v.judge)).href)) as { default?: unknown });
      if (typeof mod.default !== 'function') throw new UsageError(`--judge ${v.judge}: the module's default export must be a function (prompt, shownLeft, shownRight) => 'left' | 'right' | 'tie'`);
      const tokens = await withStore(v.db, (store) => simulatedTokens(store, v.annotators));
      const r = await simulateAnnotators({
        url: v.server,
        tokens,
        judge: mod.default as SimulatedJudge,
        errorRate: v.error_rate,
        positionBias: v.position_bias,
        labels: v.labels ?? undefined,
        seed: v.seed ?? 0,
      });
      ctx.err.write(
        `${r.labels} labels by ${v.annotators} SIMULATED annotators (error rate ${v.error_rate}, position bias ${v.position_bias}): ${r.flipped} flipped, ${r.biased} answered left regardless\n`,
      );
      ctx.out.write(JSON.stringify({ simulated: true, ...r }) + '\n');
      return 0;
    },
  },
  {
    name: 'label stats',
    summary: 'progress, agreement and position bias of the labels',
    options: pick('db', 'round', 'json'),
    run: (ctx) =>
      withStore((ctx.values as V).db, (store) => {
        const v = ctx.values as V;
        const s = computeStats(store, v.round ?? undefined);
        ctx.out.write(v.json ? JSON.stringify(s, null, 2) + '\n' : formatStats(s));
        return 0;
      }),
  },
];
