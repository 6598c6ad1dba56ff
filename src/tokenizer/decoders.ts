// Decoders of tokenizer.json ("decoder" field): ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip,
// WordPiece, BPEDecoder and Sequence. Like the tokenizers library, each decoder maps the list of token strings
// to a new list (decode_chain); the final text is the concatenation.

import { Reader, type Json } from './errors.js';
import { readPattern } from './normalizers.js';
import { regexMatchList } from './normalized.js';
import { CHAR_TO_BYTE, utf8DecodeLossy, utf8DecodeStrict, utf8Bytes } from './unicode.js';

export interface Decoder {
  decodeChain(tokens: string[]): string[];
}

/** ByteLevel: token chars back to bytes (tokens with a char outside the table contribute their UTF-8), lossy UTF-8. */
const byteLevelDecoder: Decoder = {
  decodeChain(tokens) {
    const bytes: number[] = [];
    for (const t of tokens) {
      const mark = bytes.length;
      let ok = true;
      for (const ch of t) {
        const b = CHAR_TO_BYTE.get(ch);
        if (b === undefined) {
          ok = false;
          break;
        }
        bytes.push(b);
      }
      if (!ok) {
        bytes.length = mark;
        for (const b of utf8Bytes(t)) bytes.push(b);
      }
    }
    return [utf8DecodeLossy(bytes)];
  },
};

const BYTE_TOKEN = /^<0x(\+[0-9a-fA-F]|[0-9a-fA-F]{2})>$/;

/** ByteFallback: runs of <0xNN> tokens become their UTF-8 text, or one U+FFFD per byte when invalid. */
const byteFallbackDecoder: Decoder = {
  decodeChain(tokens) {
    const out: string[] = [];
    let pending: number[] = [];
    const flush = () => {
      if (!pending.length) return;
      const s = utf8DecodeStrict(pending);
      if (s !== null) out.push(s);
      else for (let k = 0; k < pending.length; k++) out.push('\ufffd');
      pending = [];
    };
    for (const t of tokens) {
      const m = BYTE_TOKEN.exec(t);
      if (m) pending.push(parseInt(m[1], 16));
      else {
        flush();
        out.push(t);
      }
    }
    flush();
    return out;
  },
};

const fuseDecoder: Decoder = { decodeChain: (tokens) => [tokens.join('')] };

/** Strip: removes up to `start` leading and `stop` trailing occurrences of `content` from each token. */
function stripDecoder(content: string, start: number, stop: number): Decoder {
  return {
    decodeChain: (tokens) =>
      tokens.map((t) => {
        const chars = [...t];
        let a = 0;
        for (let k = 0; k < Math.min(start, chars.length) && chars[k] === content; k++) a = k + 1;
        let b = chars.length;
        for (let k = 0; k < Math.min(stop, chars.length); k++) {
          const idx = chars.length - k - 1;
          if (chars[idx] !== content) break;
          b = idx;
        }
        return a < b ? chars.slice(a, b).join('') : '';
      }),
  };
}

/** Metaspace: the replacement char becomes a space, except that it is dropped in the first token (unless never). */
function metaspaceDecoder(replacement: string, prependScheme: string): Decoder {
  return {
    decodeChain: (tokens) =>
      tokens.map((t, i) => {
        let s = '';
        for (const ch of t) {
          if (ch === replacement) {
            if (!(i === 0 && prependScheme !== 'never')) s += ' ';
          } else s += ch;
        }
        return s;
      }),
  };
}

/** The cleanup of the WordPiece decoder (and of transformers' clean_up_tokenization_spaces). */
export function cleanupSpaces(s: string, doNot = true): string {
  let r = s.replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',').replaceAll(" ' ", "'");
  r = r.replaceAll(" n't", "n't").replaceAll(" 'm", "'m");
  if (doNot) r = r.replaceAll(' do not', " don't");
  return r.replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/** Builds a decoder from its JSON description (null for none). */
export function buildDecoder(json: Json | undefined, path = 'decoder'): Decoder | null {
  if (json === null || json === undefined) return null;
  const r = Reader.of(json, path);
  const type = r.type();
  switch (type) {
    case 'ByteLevel':
      return byteLevelDecoder;
    case 'ByteFallback':
      return byteFallbackDecoder;
    case 'Fuse':
      return fuseDecoder;
    case 'Strip':
      return stripDecoder(r.char('content'), r.int('start'), r.int('stop'));
    case 'Metaspace': {
      let scheme = r.string('prepend_scheme', 'always');
      if (r.has('add_prefix_space') && r.bool('add_prefix_space') === false) scheme = 'never';
      return metaspaceDecoder(r.char('replacement', '▁'), scheme);
    }
    case 'Replace': {
      const re = readPattern(r, 'pattern');
      const content = r.string('content');
      return {
        decodeChain: (tokens) =>
          tokens.map((t) => {
            let s = '';
            for (const [a, b, m] of regexMatchList(re, t)) s += m ? content : t.slice(a, b);
            return s;
          }),
      };
    }
    case 'WordPiece': {
      const prefix = r.string('prefix', '##');
      const cleanup = r.bool('cleanup', true);
      return {
        decodeChain: (tokens) =>
          tokens.map((t, i) => {
            let s = t;
            if (i !== 0) s = s.startsWith(prefix) ? s.slice(prefix.length) : ' ' + s;
            return cleanup ? cleanupSpaces(s) : s;
          }),
      };
    }
    case 'BPEDecoder': {
      const suffix = r.string('suffix', '</w>');
      return {
        decodeChain: (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i === tokens.length - 1 ? '' : ' ')),
      };
    }
    case 'Sequence': {
      const list = r
        .array('decoders')
        .map((d, k) => buildDecoder(d, `${path}.decoders[${k}]`))
        .filter((d): d is Decoder => d !== null);
      return { decodeChain: (tokens) => list.reduce((acc, d) => d.decodeChain(acc), tokens) };
    }
    default:
      return r.fail('type', `unsupported decoder type ${JSON.stringify(type)}`);
  }
}
