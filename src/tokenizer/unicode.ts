// Unicode and byte helpers shared by the tokenizer pipeline: the GPT-2 byte<->char table used by byte-level
// BPE, UTF-8 encoding of single code points, lossy UTF-8 decoding, and the character predicates that the
// Hugging Face `tokenizers` library uses (Rust's char::is_whitespace, is_numeric, punctuation, ...).

/** Byte -> printable char table of byte-level BPE (printable Latin-1 bytes map to themselves, the rest to U+0100+n). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = new Array(256);
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = keep(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  }
  return table;
})();

/** Inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** The 256 byte-level characters sorted by code point (the initial alphabet of a byte-level BPE). */
export function byteLevelAlphabet(): string[] {
  return [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
}

/** UTF-8 bytes of one code point, appended to `out`. */
export function pushUtf8(cp: number, out: number[]): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}

const encoder = new TextEncoder();
/** UTF-8 bytes of a string (lone surrogates become U+FFFD, like Rust would never see them). */
export function utf8Bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

// ignoreBOM: keep a leading U+FEFF as text (Rust's from_utf8_lossy does not strip it).
const lossyDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes bytes as UTF-8, replacing each maximal invalid subsequence with U+FFFD (Rust's from_utf8_lossy). */
export function utf8DecodeLossy(bytes: ArrayLike<number>): string {
  return lossyDecoder.decode(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes as ArrayLike<number>));
}

/** Decodes bytes as UTF-8, or returns null if they are not valid UTF-8 (Rust's String::from_utf8). */
export function utf8DecodeStrict(bytes: ArrayLike<number>): string | null {
  try {
    return strictDecoder.decode(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes as ArrayLike<number>));
  } catch {
    return null;
  }
}

const WHITE_SPACE = /^\p{White_Space}$/u;
/** Rust's char::is_whitespace (Unicode White_Space). */
export function isWhitespace(ch: string): boolean {
  return WHITE_SPACE.test(ch);
}

const NUMERIC = /^[\p{Nd}\p{Nl}\p{No}]$/u;
/** Rust's char::is_numeric (general categories Nd, Nl, No). */
export function isNumeric(ch: string): boolean {
  return NUMERIC.test(ch);
}

const PUNCT = /^\p{P}$/u;
/** The tokenizers library's is_punc: ASCII punctuation or a Unicode punctuation character. */
export function isPunctuation(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (ch.length === 1 && ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))) return true;
  return PUNCT.test(ch);
}

/** CJK ideograph ranges used by the BERT normalizer's handle_chinese_chars. */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}
