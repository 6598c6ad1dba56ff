// Rewrites the options tables of docs/*.md from the field tables (run after `npm run build`): `npm run docs`.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { updateDocBlocks } from '../dist/src/cli/docs.js';

const docs = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'docs');
for (const f of readdirSync(docs).filter((n) => n.endsWith('.md'))) {
  const path = join(docs, f);
  const text = readFileSync(path, 'utf8');
  const next = updateDocBlocks(text, path);
  if (next !== text) {
    writeFileSync(path, next);
    console.log(`updated ${path}`);
  }
}
