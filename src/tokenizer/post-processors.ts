// Post-processors of tokenizer.json ("post_processor" field) for single sequences: TemplateProcessing (BOS/EOS
// and friends, added only when addSpecialTokens is true), ByteLevel (offset trimming only), RobertaProcessing
// and BertProcessing (<cls> A <sep>), and Sequence. Also the Encoding type that flows out of the pipeline.

import { Reader, TokenizerFormatError, type Json } from './errors.js';
import { BYTE_TO_CHAR, isWhitespace } from './unicode.js';

/** The result of encoding one text. Offsets are [start, end) in UTF-16 units of the input string. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
  /** 1 for tokens inserted by the post-processor (BOS/EOS...), else 0. */
  specialTokensMask: number[];
  typeIds: number[];
  attentionMask: number[];
}

export function emptyEncoding(): Encoding {
  return { ids: [], tokens: [], offsets: [], specialTokensMask: [], typeIds: [], attentionMask: [] };
}

export interface PostProcessor {
  /** How many tokens process() adds to a single sequence when addSpecialTokens is true. */
  addedTokens(): number;
  process(enc: Encoding, addSpecialTokens: boolean): Encoding;
}

const SPACE_CHAR = BYTE_TO_CHAR[32];

/** The ByteLevel offset trimming: leading/trailing spaces (Ġ) of a token are not part of its offsets. */
function trimByteLevelOffsets(enc: Encoding, addPrefixSpace: boolean): void {
  if (enc.offsets.length !== enc.ids.length) return; // offsets not requested
  const isSpace = (ch: string) => ch === SPACE_CHAR || isWhitespace(ch);
  enc.tokens.forEach((tok, i) => {
    const chars = [...tok];
    let lead = 0;
    while (lead < chars.length && isSpace(chars[lead])) lead++;
    let trail = 0;
    while (trail < chars.length && isSpace(chars[chars.length - 1 - trail])) trail++;
    const off = enc.offsets[i];
    if (lead > 0) {
      const isFirst = i === 0 || off[0] === 0;
      if (isFirst && addPrefixSpace && lead === 1) lead = 0;
      off[0] = Math.min(off[0] + lead, off[1]);
    }
    if (trail > 0 && off[1] >= trail) off[1] = Math.max(off[1] - trail, off[0]);
  });
}

/** Adds special tokens around a sequence (offsets only when the encoding carries them). */
function wrap(enc: Encoding, before: Array<[string, number]>, after: Array<[string, number]>, typeId = 0): Encoding {
  const out = emptyEncoding();
  const withOffsets = enc.offsets.length === enc.ids.length;
  const special = (t: [string, number]) => {
    out.ids.push(t[1]);
    out.tokens.push(t[0]);
    if (withOffsets) out.offsets.push([0, 0]);
    out.specialTokensMask.push(1);
    out.typeIds.push(typeId);
    out.attentionMask.push(1);
  };
  before.forEach(special);
  appendSequence(out, enc, typeId, withOffsets);
  after.forEach(special);
  return out;
}

/** Appends a whole encoding (no spread: sequences can be long). */
function appendSequence(out: Encoding, enc: Encoding, typeId: number, withOffsets: boolean): void {
  for (let k = 0; k < enc.ids.length; k++) {
    out.ids.push(enc.ids[k]);
    out.tokens.push(enc.tokens[k]);
    if (withOffsets) out.offsets.push(enc.offsets[k]);
    out.specialTokensMask.push(enc.specialTokensMask[k]);
    out.typeIds.push(typeId);
    out.attentionMask.push(enc.attentionMask[k]);
  }
}

type Piece = { kind: 'seq'; id: 'A' | 'B'; typeId: number } | { kind: 'special'; id: string; typeId: number };

function readTemplate(v: Json | undefined, field: string): Piece[] {
  if (typeof v === 'string') {
    return v
      .split(/\s+/)
      .filter((s) => s.length)
      .map((s): Piece => {
        const m = /^(.*?)(?::(\d+))?$/.exec(s)!;
        const typeId = m[2] ? Number(m[2]) : 0;
        const name = m[1];
        if (name === '$' || name === '$A' || name === '$a' || name === '$0') return { kind: 'seq', id: 'A', typeId };
        if (name === '$B' || name === '$b' || name === '$1') return { kind: 'seq', id: 'B', typeId };
        if (/^\$\d+$/.test(name)) return { kind: 'seq', id: 'A', typeId: Number(name.slice(1)) };
        return { kind: 'special', id: name, typeId };
      });
  }
  if (!Array.isArray(v)) throw new TokenizerFormatError(field, 'expected a template (array of pieces or string)');
  return v.map((p, k): Piece => {
    const pr = Reader.of(p, `${field}[${k}]`);
    if (pr.has('Sequence')) {
      const s = pr.object('Sequence');
      const id = s.string('id');
      if (id !== 'A' && id !== 'B') s.fail('id', `expected "A" or "B", got ${JSON.stringify(id)}`);
      return { kind: 'seq', id: id as 'A' | 'B', typeId: s.int('type_id', 0) };
    }
    if (pr.has('SpecialToken')) {
      const s = pr.object('SpecialToken');
      return { kind: 'special', id: s.string('id'), typeId: s.int('type_id', 0) };
    }
    return pr.fail('Sequence', 'expected {"Sequence": ...} or {"SpecialToken": ...}');
  });
}

function readTokenPair(r: Reader, name: string): [string, number] {
  const v = r.raw(name);
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'number') r.fail(name, 'expected a ["token", id] pair');
  return [v[0] as string, v[1] as number];
}

/** Builds a post-processor from its JSON description (null for none). */
export function buildPostProcessor(json: Json | undefined, path = 'post_processor'): PostProcessor | null {
  if (json === null || json === undefined) return null;
  const r = Reader.of(json, path);
  const type = r.type();
  switch (type) {
    case 'TemplateProcessing': {
      const single = readTemplate(r.raw('single'), r.field('single'));
      const st = r.has('special_tokens') ? r.object('special_tokens') : null;
      const specials = new Map<string, Array<[string, number]>>();
      for (const p of single) {
        if (p.kind !== 'special') continue;
        const f = `${path}.special_tokens`;
        const entry = st?.obj[p.id];
        if (entry === undefined) throw new TokenizerFormatError(f, `the template uses the special token ${JSON.stringify(p.id)}, which is not defined here`);
        const er = Reader.of(entry, `${f}.${JSON.stringify(p.id)}`);
        const ids = er.array('ids');
        const toks = er.array('tokens');
        if (ids.length !== toks.length || ids.some((x) => typeof x !== 'number') || toks.some((x) => typeof x !== 'string'))
          er.fail('ids', 'ids and tokens must be arrays of the same length (numbers, strings)');
        specials.set(
          p.id,
          toks.map((t, k) => [t as string, ids[k] as number]),
        );
      }
      const added = single.reduce((n, p) => n + (p.kind === 'special' ? specials.get(p.id)!.length : 0), 0);
      return {
        addedTokens: () => added,
        process(enc, addSpecialTokens) {
          const out = emptyEncoding();
          const withOffsets = enc.offsets.length === enc.ids.length;
          for (const p of single) {
            if (p.kind === 'seq') {
              if (p.id === 'A') appendSequence(out, enc, p.typeId, withOffsets);
            } else if (addSpecialTokens) {
              for (const [tok, id] of specials.get(p.id)!) {
                out.ids.push(id);
                out.tokens.push(tok);
                if (withOffsets) out.offsets.push([0, 0]);
                out.specialTokensMask.push(1);
                out.typeIds.push(p.typeId);
                out.attentionMask.push(1);
              }
            }
          }
          return out;
        },
      };
    }
    case 'ByteLevel': {
      const trim = r.bool('trim_offsets', true);
      const addPrefixSpace = r.bool('add_prefix_space', true);
      return {
        addedTokens: () => 0,
        process(enc) {
          if (trim) trimByteLevelOffsets(enc, addPrefixSpace);
          return enc;
        },
      };
    }
    case 'RobertaProcessing':
    case 'BertProcessing': {
      const sep = readTokenPair(r, 'sep');
      const cls = readTokenPair(r, 'cls');
      const trim = type === 'RobertaProcessing' && r.bool('trim_offsets', true);
      const addPrefixSpace = r.bool('add_prefix_space', true);
      return {
        addedTokens: () => 2,
        process(enc, addSpecialTokens) {
          if (trim) trimByteLevelOffsets(enc, addPrefixSpace);
          if (!addSpecialTokens) return enc;
          return wrap(enc, [cls], [sep]);
        },
      };
    }
    case 'Sequence': {
      const list = r
        .array('processors')
        .map((p, k) => buildPostProcessor(p, `${path}.processors[${k}]`))
        .filter((p): p is PostProcessor => p !== null);
      return {
        addedTokens: () => list.reduce((n, p) => n + p.addedTokens(), 0),
        process: (enc, add) => list.reduce((e, p) => p.process(e, add), enc),
      };
    }
    default:
      return r.fail('type', `unsupported post-processor type ${JSON.stringify(type)}`);
  }
}
