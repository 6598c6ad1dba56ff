// `alignkit chat --model DIR`: a conversation with one model in the terminal. Each answer streams as it is
// generated (on the same engine thread as `alignkit serve`), the conversation is kept and rendered with the
// model's chat template every turn (the oldest turns are dropped when it outgrows the context), `/system TEXT`
// sets the system message and starts over, `/reset` starts over, `/exit` (or end of input) quits, and Ctrl-C
// stops the current answer — the part already written stays in the conversation — not the program.
import { createInterface } from 'node:readline';
import type { ChatMessage } from '../tokenizer/index.js';
import { ChoiceText } from './detok.js';
import { Engine, type JobHandle } from './engine.js';
import { type ServedModel, servedModels } from './models.js';
import type { ModelSpec } from './protocol.js';

interface ChatOptions {
  model: ModelSpec;
  system: string | null;
  maxNewTokens: number;
  temperature: number;
  topP: number | null;
  topK: number | null;
  seed: number;
  input: NodeJS.ReadableStream;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const HELP = 'commands: /system TEXT (set the system message and start over), /reset, /exit; Ctrl-C stops an answer';

/** The prompt ids of the conversation, dropping the oldest turns (never the system message) until it fits. */
function fit(m: ServedModel, turns: ChatMessage[], system: string | null, room: number): { ids: number[]; dropped: number } {
  let dropped = 0;
  for (;;) {
    const messages = system ? [{ role: 'system', content: system }, ...turns] : turns;
    const ids = m.tok.applyChatTemplate(messages, { addGenerationPrompt: true, tokenize: true });
    if (ids.length <= room || turns.length <= 1) return { ids, dropped };
    turns.splice(0, turns.length > 2 ? 2 : 1);
    dropped++;
  }
}

export async function runChat(o: ChatOptions): Promise<number> {
  const engine = await Engine.start({ models: [o.model], maxBatch: 1 });
  let model: ServedModel;
  try {
    model = servedModels(engine.models)[0]!;
    if (!model.hasChatTemplate)
      throw new Error(
        `${o.model.dir}: the tokenizer has no chat template (tokenizer_config.json chat_template or chat_template.jinja), so a conversation cannot be rendered; use \`alignkit generate\` for plain text`,
      );
  } catch (e) {
    await engine.close();
    throw e;
  }
  const tty = (o.input as { isTTY?: boolean }).isTTY === true;
  const rl = createInterface({ input: o.input, output: tty ? o.out : undefined, terminal: tty });
  let system = o.system;
  const turns: ChatMessage[] = [];
  let current: { handle: JobHandle; stop: () => void } | null = null;
  let turn = 0;
  const prompt = () => {
    if (tty) rl.prompt();
  };
  o.err.write(`alignkit chat: ${model.name} (context ${model.info.contextLength}); ${HELP}\n`);

  const answer = (text: string): Promise<void> =>
    new Promise<void>((resolve) => {
      turns.push({ role: 'user', content: text });
      const room = model.info.contextLength - Math.min(o.maxNewTokens, model.info.contextLength - 1);
      const { ids, dropped } = fit(model, turns, system, room);
      if (dropped) o.err.write(`(the conversation outgrew the context: dropped the ${dropped} oldest exchange${dropped > 1 ? 's' : ''})\n`);
      const maxTokens = Math.min(o.maxNewTokens, model.info.contextLength - ids.length);
      if (maxTokens < 1) {
        o.err.write('(this message alone fills the context; say something shorter)\n');
        turns.pop();
        return resolve();
      }
      const ct = new ChoiceText(model.tok, [], new Set(model.stopIds));
      const end = (note: string | null) => {
        if (!current) return;
        current = null;
        const rest = ct.flush();
        o.out.write(rest + (note ? ` ${note}` : '') + '\n');
        turns.push({ role: 'assistant', content: ct.fullText });
        resolve();
      };
      const handle = engine.submit(
        model.name,
        ids,
        {
          maxTokens,
          temperature: o.temperature,
          topP: o.topP,
          topK: o.topK,
          seed: (o.seed + turn++) >>> 0,
          n: 1,
          logprobs: null,
          promptLogprobs: false,
          stopIds: model.stopIds,
        },
        {
          onToken: (_c, token) => {
            const d = ct.push(token);
            if (d) o.out.write(d);
          },
          onDone: () => end(null),
          onError: (message) => {
            o.err.write(`\nerror: ${message}\n`);
            end(null);
          },
        },
      );
      current = { handle, stop: () => (handle.cancel(), end('[stopped]')) };
    });

  const interrupt = () => {
    if (current) current.stop();
    else o.err.write(`\n(${HELP})\n`);
  };
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);
  rl.setPrompt('> ');
  prompt();
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === '') {
        prompt();
        continue;
      }
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        turns.length = 0;
        o.err.write('(conversation cleared)\n');
      } else if (text === '/system' || text.startsWith('/system ')) {
        system = text.slice('/system'.length).trim() || null;
        turns.length = 0;
        o.err.write(system ? '(system message set; conversation cleared)\n' : '(system message removed; conversation cleared)\n');
      } else if (text === '/help') o.err.write(`${HELP}\n`);
      else if (text.startsWith('/')) o.err.write(`unknown command ${text.split(/\s/)[0]} (${HELP})\n`);
      else await answer(text);
      prompt();
    }
  } finally {
    process.off('SIGINT', interrupt);
    rl.close();
    await engine.close();
  }
  return 0;
}
