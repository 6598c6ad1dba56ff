// A constitution: the written principles that stand in for most human harm labels (Bai et al. 2022). Each
// principle has an id, a critique request and a revision request (the supervised stage: critique → revise), and
// a comparison question (the AI-feedback stage: which of two replies follows it better), optionally with worked
// examples shown before the model's own turn. Read from YAML or JSON; a malformed file is refused with
// `FILE:LINE: principles[3].revision: what is wrong`.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { fsReason } from '../io/fs-errors.js';

/** A worked critique → revision: shown as earlier turns of the conversation. */
export interface CritiqueExample {
  request: string;
  response: string;
  critique: string;
  revision: string;
}

/** A worked comparison: the question answered for two replies. */
export interface ComparisonExample {
  request: string;
  response_a: string;
  response_b: string;
  answer: 'A' | 'B';
}

export interface Principle {
  id: string;
  critique: string;
  revision: string;
  comparison: string;
  examples?: { critique?: CritiqueExample[]; comparison?: ComparisonExample[] };
}

export interface Constitution {
  /** where it came from (a path, or 'the default constitution') */
  source: string;
  principles: Principle[];
  /** worked examples used with every principle (a principle's own come first) */
  examples?: { critique?: CritiqueExample[]; comparison?: ComparisonExample[] };
}

export class ConstitutionError extends Error {
  override name = 'ConstitutionError';
}

/** Reads and checks a constitution file. */
export function readConstitution(path: string): Constitution {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConstitutionError(`cannot read constitution ${path}: ${fsReason(e)}`);
  }
  return parseConstitution(text, path);
}

/** Parses and checks constitution text (YAML or JSON); `source` names it in errors. */
export function parseConstitution(text: string, source: string): Constitution {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) throw new ConstitutionError(`${source}:${lc.linePos(doc.errors[0]!.pos[0]).line}: ${doc.errors[0]!.message.split('\n')[0]}`);
  const lineOf = (node: unknown): number => {
    const r = (node as { range?: [number, number, number] } | null)?.range;
    return r ? lc.linePos(r[0]).line : 1;
  };
  const fail = (node: unknown, field: string, what: string): never => {
    throw new ConstitutionError(`${source}:${lineOf(node)}: ${field}: ${what}`);
  };
  const root = doc.contents;
  if (!isMap(root)) return fail(root, '(root)', 'a constitution is a mapping with a `principles` list');
  const get = (map: YamlNode, key: string): YamlNode | null => (isMap(map) ? ((map.get(key, true) as YamlNode | undefined) ?? null) : null);
  const str = (map: YamlNode, key: string, field: string, optional = false): string | undefined => {
    const n = get(map, key);
    if (n === null) {
      if (optional) return undefined;
      return fail(map, field, 'missing');
    }
    const v = (n as { toJSON(): unknown }).toJSON();
    if (typeof v !== 'string' || !v.trim()) return fail(n, field, `must be a non-empty string, got ${JSON.stringify(v)}`);
    return v.trim();
  };
  const known = (map: YamlNode, keys: readonly string[], field: string): void => {
    if (!isMap(map)) return;
    for (const item of map.items) {
      const k = String((item.key as { value?: unknown } | null)?.value ?? item.key);
      if (!keys.includes(k)) fail(item.key, field ? `${field}.${k}` : k, `unknown key (expected ${keys.join(', ')})`);
    }
  };
  const examples = (node: YamlNode | null, field: string): Principle['examples'] | undefined => {
    if (node === null) return undefined;
    if (!isMap(node)) return fail(node, field, 'must be a mapping with `critique` and/or `comparison` lists');
    known(node, ['critique', 'comparison'], field);
    const out: NonNullable<Principle['examples']> = {};
    const c = get(node, 'critique');
    if (c !== null) {
      if (!isSeq(c)) return fail(c, `${field}.critique`, 'must be a list');
      out.critique = c.items.map((it, i) => {
        const f = `${field}.critique[${i}]`;
        if (!isMap(it)) return fail(it, f, 'must be a mapping {request, response, critique, revision}');
        known(it, ['request', 'response', 'critique', 'revision'], f);
        return {
          request: str(it, 'request', `${f}.request`)!,
          response: str(it, 'response', `${f}.response`)!,
          critique: str(it, 'critique', `${f}.critique`)!,
          revision: str(it, 'revision', `${f}.revision`)!,
        };
      });
    }
    const m = get(node, 'comparison');
    if (m !== null) {
      if (!isSeq(m)) return fail(m, `${field}.comparison`, 'must be a list');
      out.comparison = m.items.map((it, i) => {
        const f = `${field}.comparison[${i}]`;
        if (!isMap(it)) return fail(it, f, 'must be a mapping {request, response_a, response_b, answer}');
        known(it, ['request', 'response_a', 'response_b', 'answer'], f);
        const answer = str(it, 'answer', `${f}.answer`)!;
        if (answer !== 'A' && answer !== 'B') fail(get(it, 'answer'), `${f}.answer`, `must be A or B, got ${JSON.stringify(answer)}`);
        return {
          request: str(it, 'request', `${f}.request`)!,
          response_a: str(it, 'response_a', `${f}.response_a`)!,
          response_b: str(it, 'response_b', `${f}.response_b`)!,
          answer: answer as 'A' | 'B',
        };
      });
    }
    return out;
  };
  known(root, ['principles', 'examples'], '');
  const list = get(root, 'principles');
  if (list === null) return fail(root, 'principles', 'missing');
  if (!isSeq(list) || list.items.length === 0) return fail(list, 'principles', 'must be a non-empty list');
  const ids = new Set<string>();
  const principles = list.items.map((it, i) => {
    const f = `principles[${i}]`;
    if (!isMap(it)) return fail(it, f, 'must be a mapping {id, critique, revision, comparison}');
    known(it, ['id', 'critique', 'revision', 'comparison', 'examples'], f);
    const id = str(it, 'id', `${f}.id`)!;
    if (ids.has(id)) fail(get(it, 'id'), `${f}.id`, `duplicate id ${JSON.stringify(id)}`);
    ids.add(id);
    const p: Principle = { id, critique: str(it, 'critique', `${f}.critique`)!, revision: str(it, 'revision', `${f}.revision`)!, comparison: str(it, 'comparison', `${f}.comparison`)! };
    const ex = examples(get(it, 'examples'), `${f}.examples`);
    if (ex) p.examples = ex;
    return p;
  });
  const c: Constitution = { source, principles };
  const ex = examples(get(root, 'examples'), 'examples');
  if (ex) c.examples = ex;
  return c;
}

/** The critique → revision examples shown with a principle (its own first, then the constitution's). */
export function critiqueExamples(c: Constitution, p: Principle): CritiqueExample[] {
  return [...(p.examples?.critique ?? []), ...(c.examples?.critique ?? [])];
}

/** The comparison examples shown with a principle. */
export function comparisonExamples(c: Constitution, p: Principle): ComparisonExample[] {
  return [...(p.examples?.comparison ?? []), ...(c.examples?.comparison ?? [])];
}

/** A principle chosen by a seed: the same (seed, item, round) always draws the same principle. */
export function samplePrinciple(c: Constitution, seed: number, item: string, round: number): Principle {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (const ch of `${item}\u0000${round}`) h = Math.imul(h ^ ch.codePointAt(0)!, 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  h = (h ^ (h >>> 12)) >>> 0;
  return c.principles[h % c.principles.length]!;
}
