// `alignkit serve` (the OpenAI-compatible server) and `alignkit chat` (a terminal chat with one model).
import { type Command, UsageError } from '../options/command.js';
import { type OptionsOf, f } from '../options/fields.js';
import { parseModelArg } from './models.js';
import type { ModelSpec } from './protocol.js';
import { isLoopback, startServer } from './server.js';

const SERVE_OPTIONS = {
  model: f.list([], 'a model to serve, NAME=DIR or DIR (named after its folder); DIR is a Hugging Face folder or a PEFT adapter folder (adapters share their base in memory)', {
    repeatable: true,
    metavar: 'NAME=DIR',
  }),
  host: f.string('127.0.0.1', 'address to bind; any but this machine (127.0.0.1, ::1) needs --api-key'),
  port: f.integer(8000, 'TCP port (0 picks a free one)', { min: 0, max: 65535 }),
  api_key: f.string(null, 'require Authorization: Bearer KEY on every route but /health (default: $ALIGNKIT_API_KEY; none on 127.0.0.1)', { nullable: true, metavar: 'KEY' }),
  max_batch: f.integer(32, 'sequences decoded together (continuous batching), per base model', { min: 1, max: 1024 }),
  max_queue: f.integer(256, 'requests waiting for a place in the batch; past it, 429 with Retry-After', { min: 0 }),
  max_tokens: f.integer(2048, 'new tokens one request may ask for (and the default for chat requests)', { min: 1 }),
  max_n: f.integer(16, 'choices (n) one request may ask for', { min: 1 }),
  request_timeout: f.number(600, 'seconds a request may run; it then ends with what it has (finish_reason length)', { min: 0, exclusiveMin: true }),
  max_body_kib: f.integer(1024, 'largest request body, KiB (413 past it)', { min: 1 }),
  shutdown_grace: f.number(10, 'on SIGTERM/SIGINT, seconds running requests may finish before they are ended', { min: 0 }),
  allow_host: f.list([], 'another Host name the 127.0.0.1 server answers to, NAME or NAME:PORT (a reverse proxy, an SSH tunnel)', { repeatable: true, metavar: 'HOST' }),
};

type ServeValues = OptionsOf<typeof SERVE_OPTIONS>;

function modelSpecs(args: readonly string[]): ModelSpec[] {
  if (!args.length) throw new UsageError('give at least one --model NAME=DIR');
  try {
    return args.map(parseModelArg);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const SERVE_COMMAND: Command = {
  name: 'serve',
  summary: 'an OpenAI-compatible server (chat and text completions, streaming, continuous batching)',
  options: SERVE_OPTIONS,
  details: `Example:
  alignkit serve --model sft=runs/sft --model dpo=runs/dpo-lora --port 8000
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "sft", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}'
Any OpenAI client works with base URL http://127.0.0.1:8000/v1 (see docs/serve.md).`,
  async run(ctx) {
    const v = ctx.values as ServeValues;
    const models = modelSpecs(v.model);
    const apiKey = v.api_key ?? process.env.ALIGNKIT_API_KEY ?? null;
    if (!isLoopback(v.host) && !apiKey) throw new UsageError(`--host ${v.host} makes the server reachable from other machines: give --api-key KEY (or set ALIGNKIT_API_KEY)`);
    const log = (line: string) => ctx.err.write(`[serve] ${line}\n`);
    const server = await startServer({
      models,
      host: v.host,
      port: v.port,
      apiKey,
      maxBatch: v.max_batch,
      maxQueue: v.max_queue,
      maxTokens: v.max_tokens,
      maxN: v.max_n,
      requestTimeoutMs: v.request_timeout * 1000,
      maxBody: v.max_body_kib * 1024,
      allowHosts: v.allow_host,
      log,
    });
    for (const m of server.models)
      log(
        `${m.name}: ${m.info.dir}${m.info.adapter ? ` (LoRA on ${m.info.baseDir})` : ''}, context ${m.info.contextLength}, ${m.hasChatTemplate ? 'chat template' : 'no chat template (completions only)'}`,
      );
    ctx.out.write(`alignkit serve: listening on ${server.url}/v1 (${server.models.map((m) => m.name).join(', ')})\n`);
    return new Promise<number>((resolveExit) => {
      const stop = (sig: string) => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        log(`${sig}: finishing running requests (up to ${v.shutdown_grace} s), then stopping`);
        server.close(v.shutdown_grace * 1000).then(
          () => (log('stopped'), resolveExit(0)),
          (e: Error) => (log(`shutdown failed: ${e.message}`), resolveExit(1)),
        );
      };
      const onInt = () => stop('SIGINT');
      const onTerm = () => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
  },
};

const CHAT_OPTIONS = {
  model: f.string('', 'a Hugging Face model folder with a chat template in its tokenizer (or a PEFT adapter folder)', { required: true, metavar: 'DIR' }),
  system: f.string(null, 'the system message to start with (/system TEXT changes it)', { nullable: true, metavar: 'TEXT' }),
  max_new_tokens: f.integer(256, 'new tokens per answer at most', { min: 1 }),
  temperature: f.number(0.7, 'sampling temperature (0: greedy)', { min: 0, max: 2 }),
  top_p: f.number(null, 'sample from the smallest set of tokens with this much probability', { min: 0, max: 1, exclusiveMin: true, nullable: true }),
  top_k: f.integer(null, 'sample from the k most likely tokens', { min: 1, nullable: true }),
  seed: f.integer(0, 'sampling seed (answer i uses seed + i)', { min: 0 }),
};

const CHAT_COMMAND: Command = {
  name: 'chat',
  summary: 'talk to a model in the terminal (streams answers; /system, /reset; Ctrl-C stops an answer)',
  options: CHAT_OPTIONS,
  async run(ctx) {
    const v = ctx.values as OptionsOf<typeof CHAT_OPTIONS>;
    const [model] = modelSpecs([v.model]);
    const { runChat } = await import('./chat.js');
    try {
      return await runChat({
        model: model!,
        system: v.system,
        maxNewTokens: v.max_new_tokens,
        temperature: v.temperature,
        topP: v.top_p,
        topK: v.top_k,
        seed: v.seed,
        input: process.stdin,
        out: ctx.out,
        err: ctx.err,
      });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  },
};

export const SERVE_COMMANDS: Command[] = [SERVE_COMMAND, CHAT_COMMAND];
