// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocabulary, ranked merges (both the
// "a b" string and the ["a", "b"] pair serialisations), unk_token with fuse_unk, byte_fallback (<0xNN> tokens),
// continuing_subword_prefix / end_of_word_suffix, ignore_merges. Words are merged with the same priority rule
// as the tokenizers library (lowest merge rank first, leftmost first among equal ranks). Dropout is not
// supported: a model with dropout > 0 is rejected when loaded.

import { Reader, TokenizerFormatError, type Json, type JsonObject } from './errors.js';

/** A token produced by the model for one piece: id, token string, [start, end) in the piece's UTF-16 units. */
interface ModelToken {
  id: number;
  start: number;
  end: number;
}

interface BPEOptions {
  unkToken?: string | null;
  continuingSubwordPrefix?: string | null;
  endOfWordSuffix?: string | null;
  fuseUnk?: boolean;
  byteFallback?: boolean;
  ignoreMerges?: boolean;
}

const PAIR_SHIFT = 2 ** 26;
const utf8 = new TextEncoder();
const CACHE_LIMIT = 10000;

/** Binary min-heap of merge candidates ordered by (rank, position). */
class MergeHeap {
  private ranks: number[] = [];
  private pos: number[] = [];
  private ids: number[] = [];
  get size(): number {
    return this.ranks.length;
  }
  private less(a: number, b: number): boolean {
    return this.ranks[a] < this.ranks[b] || (this.ranks[a] === this.ranks[b] && this.pos[a] < this.pos[b]);
  }
  private swap(a: number, b: number): void {
    [this.ranks[a], this.ranks[b]] = [this.ranks[b], this.ranks[a]];
    [this.pos[a], this.pos[b]] = [this.pos[b], this.pos[a]];
    [this.ids[a], this.ids[b]] = [this.ids[b], this.ids[a]];
  }
  push(rank: number, pos: number, newId: number): void {
    this.ranks.push(rank);
    this.pos.push(pos);
    this.ids.push(newId);
    let k = this.ranks.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!this.less(k, parent)) break;
      this.swap(k, parent);
      k = parent;
    }
  }
  /** Pops the smallest entry into out[0..2] = rank, pos, newId. */
  pop(out: number[]): void {
    out[0] = this.ranks[0];
    out[1] = this.pos[0];
    out[2] = this.ids[0];
    const last = this.ranks.length - 1;
    if (last > 0) this.swap(0, last);
    this.ranks.pop();
    this.pos.pop();
    this.ids.pop();
    let k = 0;
    const n = this.ranks.length;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === k) break;
      this.swap(k, m);
      k = m;
    }
  }
}

export class BPEModel {
  readonly vocab: Map<string, number>;
  readonly vocabR: Map<number, string>;
  /** Merges in rank order, as [left, right] token strings. */
  readonly merges: Array<[string, string]>;
  /** pair key (left id * 2^26 + right id) -> [rank, merged id]. */
  private readonly mergeMap: Map<number, [number, number]>;
  readonly unkToken: string | null;
  readonly continuingSubwordPrefix: string | null;
  readonly endOfWordSuffix: string | null;
  readonly fuseUnk: boolean;
  readonly byteFallback: boolean;
  readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, ModelToken[]>();
  private readonly byteIds: Array<number | undefined>;

  constructor(vocab: Map<string, number>, merges: Array<[string, string]>, opts: BPEOptions = {}, path = 'model') {
    this.vocab = vocab;
    this.vocabR = new Map();
    for (const [tok, id] of vocab) this.vocabR.set(id, tok);
    this.merges = merges;
    this.unkToken = opts.unkToken ?? null;
    this.continuingSubwordPrefix = opts.continuingSubwordPrefix ?? null;
    this.endOfWordSuffix = opts.endOfWordSuffix ?? null;
    this.fuseUnk = opts.fuseUnk ?? false;
    this.byteFallback = opts.byteFallback ?? false;
    this.ignoreMerges = opts.ignoreMerges ?? false;
    this.mergeMap = new Map();
    const prefixLen = this.continuingSubwordPrefix?.length ?? 0;
    merges.forEach(([a, b], rank) => {
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const merged = a + b.slice(prefixLen);
      const im = vocab.get(merged);
      const missing = ia === undefined ? a : ib === undefined ? b : im === undefined ? merged : null;
      if (missing !== null) throw new TokenizerFormatError(`${path}.merges[${rank}]`, `the merge ${JSON.stringify([a, b])} uses the token ${JSON.stringify(missing)}, which is not in ${path}.vocab`);
      this.mergeMap.set(ia! * PAIR_SHIFT + ib!, [rank, im!]);
    });
    this.byteIds = [];
    for (let b = 0; b < 256; b++) this.byteIds.push(vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
  }

  /** Reads a {"type": "BPE", ...} model object. */
  static fromJSON(json: Json | undefined, path = 'model'): BPEModel {
    const r = Reader.of(json, path);
    const type = r.string('type', 'BPE');
    if (type !== 'BPE') r.fail('type', `unsupported model type ${JSON.stringify(type)} (only "BPE" is supported)`);
    const dropout = r.number('dropout', null);
    if (dropout !== null) {
      if (dropout < 0 || dropout > 1) r.fail('dropout', `must be between 0 and 1, got ${dropout}`);
      if (dropout > 0) r.fail('dropout', `BPE dropout (${dropout}) is not supported; set it to null to tokenize deterministically`);
    }
    const vr = r.object('vocab');
    const vocab = new Map<string, number>();
    for (const [tok, id] of Object.entries(vr.obj)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new TokenizerFormatError(vr.field(JSON.stringify(tok)), `expected a non-negative integer id, got ${JSON.stringify(id)}`);
      vocab.set(tok, id);
    }
    const mj = r.array('merges');
    const merges: Array<[string, string]> = [];
    mj.forEach((m, k) => {
      const f = `${path}.merges[${k}]`;
      if (typeof m === 'string') {
        if (m.startsWith('#version')) return;
        const parts = m.split(' ');
        if (parts.length !== 2) throw new TokenizerFormatError(f, `expected "left right" (two tokens separated by one space), got ${JSON.stringify(m)}`);
        merges.push([parts[0], parts[1]]);
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
        merges.push([m[0], m[1]]);
      } else {
        throw new TokenizerFormatError(f, `expected a "left right" string or a ["left", "right"] pair, got ${JSON.stringify(m)}`);
      }
    });
    return new BPEModel(
      vocab,
      merges,
      {
        unkToken: r.string('unk_token', null),
        continuingSubwordPrefix: r.string('continuing_subword_prefix', null),
        endOfWordSuffix: r.string('end_of_word_suffix', null),
        fuseUnk: r.bool('fuse_unk', false),
        byteFallback: r.bool('byte_fallback', false),
        ignoreMerges: r.bool('ignore_merges', false),
      },
      path,
    );
  }

  /** The tokenizer.json representation (merges as pairs, as the current tokenizers library writes them). */
  toJSON(): JsonObject {
    const vocab: JsonObject = {};
    for (const [t, id] of [...this.vocab].sort((a, b) => a[1] - b[1])) vocab[t] = id;
    return {
      type: 'BPE',
      dropout: null,
      unk_token: this.unkToken,
      continuing_subword_prefix: this.continuingSubwordPrefix,
      end_of_word_suffix: this.endOfWordSuffix,
      fuse_unk: this.fuseUnk,
      byte_fallback: this.byteFallback,
      ignore_merges: this.ignoreMerges,
      vocab,
      merges: this.merges.map(([a, b]) => [a, b]),
    };
  }

  get size(): number {
    return this.vocab.size;
  }

  tokenToId(t: string): number | undefined {
    return this.vocab.get(t);
  }

  idToToken(id: number): string | undefined {
    return this.vocabR.get(id);
  }

  /** Tokenizes one pre-tokenized piece. Offsets are in UTF-16 units of `piece`. */
  tokenize(piece: string): ModelToken[] {
    if (piece.length === 0) return [];
    if (this.ignoreMerges) {
      const id = this.vocab.get(piece);
      if (id !== undefined) return [{ id, start: 0, end: piece.length }];
    }
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const toks = this.mergeWord(piece);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    if (piece.length < 256) this.cache.set(piece, toks);
    return toks;
  }

  private unkId(): number {
    const id = this.vocab.get(this.unkToken!);
    if (id === undefined) throw new TokenizerFormatError('model.unk_token', `the unk token ${JSON.stringify(this.unkToken)} is not in model.vocab`);
    return id;
  }

  /** Splits into initial symbols (chars, byte fallbacks, unk) then applies the merges. */
  private mergeWord(w: string): ModelToken[] {
    const ids: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    let unk: [number, number, number] | null = null; // id, start, end
    const n = w.length;
    for (let k = 0; k < n; ) {
      const c = w.charCodeAt(k);
      const width = c >= 0xd800 && c <= 0xdbff && k + 1 < n && (w.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      const isFirst = k === 0;
      const isLast = k + width === n;
      let s = w.slice(k, k + width);
      if (!isFirst && this.continuingSubwordPrefix !== null) s = this.continuingSubwordPrefix + s;
      if (isLast && this.endOfWordSuffix !== null) s = s + this.endOfWordSuffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (unk) {
          ids.push(unk[0]);
          starts.push(unk[1]);
          ends.push(unk[2]);
          unk = null;
        }
        ids.push(id);
        starts.push(k);
        ends.push(k + width);
      } else {
        let handled = false;
        if (this.byteFallback) {
          const bytes = utf8.encode(s);
          const bids: number[] = [];
          for (const b of bytes) {
            const bid = this.byteIds[b];
            if (bid === undefined) break;
            bids.push(bid);
          }
          if (bids.length === bytes.length) {
            for (const bid of bids) {
              ids.push(bid);
              starts.push(k);
              ends.push(k + width);
            }
            handled = true;
          }
        }
        if (!handled && this.unkToken !== null) {
          if (unk && this.fuseUnk) unk[2] = k + width;
          else {
            if (unk) {
              ids.push(unk[0]);
              starts.push(unk[1]);
              ends.push(unk[2]);
            }
            unk = [this.unkId(), k, k + width];
          }
        }
      }
      k += width;
    }
    if (unk) {
      ids.push(unk[0]);
      starts.push(unk[1]);
      ends.push(unk[2]);
    }
    return this.mergeAll(ids, starts, ends);
  }

  /**
   * Applies merges: repeatedly the candidate pair with the lowest rank (leftmost on ties), as a priority queue
   * over a linked list of symbols, skipping stale queue entries.
   */
  private mergeAll(ids: number[], starts: number[], ends: number[]): ModelToken[] {
    const n = ids.length;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    const heap = new MergeHeap();
    for (let k = 0; k < n; k++) {
      prev[k] = k - 1;
      next[k] = k + 1 < n ? k + 1 : -1;
      if (k + 1 < n) {
        const m = this.mergeMap.get(ids[k] * PAIR_SHIFT + ids[k + 1]);
        if (m) heap.push(m[0], k, m[1]);
      }
    }
    const top = [0, 0, 0];
    while (heap.size > 0) {
      heap.pop(top);
      const pos = top[1];
      const newId = top[2];
      if (!alive[pos]) continue;
      const right = next[pos];
      if (right < 0) continue;
      const m = this.mergeMap.get(ids[pos] * PAIR_SHIFT + ids[right]);
      if (!m || m[1] !== newId) continue;
      ids[pos] = newId;
      ends[pos] = ends[right];
      alive[right] = 0;
      const rn = next[right];
      next[pos] = rn;
      if (rn >= 0) prev[rn] = pos;
      const p = prev[pos];
      if (p >= 0) {
        const mp = this.mergeMap.get(ids[p] * PAIR_SHIFT + newId);
        if (mp) heap.push(mp[0], p, mp[1]);
      }
      if (rn >= 0) {
        const mn = this.mergeMap.get(newId * PAIR_SHIFT + ids[rn]);
        if (mn) heap.push(mn[0], pos, mn[1]);
      }
    }
    const out: ModelToken[] = [];
    for (let k = 0; k >= 0 && k < n; k = next[k]) out.push({ id: ids[k], start: starts[k], end: ends[k] });
    return out;
  }
}
