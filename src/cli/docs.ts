// The options tables in docs/ come from the field tables: each `<!-- options:NAME -->` … `<!-- /options -->` block
// of a Markdown page holds markdownTable() of the table NAME, so --help, the validation and the docs cannot drift
// (test/docs.test.ts fails when a block is stale; `npm run docs` rewrites them).
import { RECIPE_FIELDS } from '../cai/recipe.js';
import { type FieldTable, markdownTable } from '../options/fields.js';
import { RLHF_FIELDS } from '../rlhf/loop.js';
import { TRAINING_FIELDS } from '../train/args.js';
import { DATA_FIELDS } from '../train/data-args.js';
import { MODEL_FIELDS } from '../train/model-args.js';
import { TRAINERS } from '../train/run.js';

/** A config's own options: those it adds to TrainingArguments or whose default it changes. */
function own(fields: FieldTable): FieldTable {
  const out: FieldTable = {};
  for (const [k, f] of Object.entries(fields)) {
    const base = (TRAINING_FIELDS as FieldTable)[k];
    if (!base || JSON.stringify(base.default) !== JSON.stringify(f.default)) out[k] = f;
  }
  return out;
}

/** Every table the docs embed, by block name. */
export function docTables(): Record<string, FieldTable> {
  const t: Record<string, FieldTable> = { TrainingArguments: TRAINING_FIELDS, ModelConfig: MODEL_FIELDS, data: DATA_FIELDS, 'cai run': RECIPE_FIELDS, rlhf: RLHF_FIELDS };
  for (const [kind, e] of Object.entries(TRAINERS)) {
    t[e.spec.name] = own(e.spec.fields);
    if (Object.keys(e.extras).length) t[`${kind} run`] = e.extras;
  }
  return t;
}

const BLOCK = /<!-- options:([^>]+?) -->\n[\s\S]*?<!-- \/options -->/g;

/** The page with every options block rewritten from its table; unknown block names are an error. */
export function updateDocBlocks(text: string, page = 'docs'): string {
  const tables = docTables();
  return text.replace(BLOCK, (_m, name: string) => {
    const t = tables[name];
    if (!t) throw new Error(`${page}: no options table named ${JSON.stringify(name)} (known: ${Object.keys(tables).join(', ')})`);
    return `<!-- options:${name} -->\n${markdownTable(t)}\n<!-- /options -->`;
  });
}
