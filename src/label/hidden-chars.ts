// Characters that make displayed text differ from the text a model trains on: bidi controls (U+202E turns
// "tcerroc ton" into what reads as "not correct"), zero-width and other invisible format characters, C0/C1 controls
// other than newline and tab, and Unicode tag characters. The labeling page shows each one as a visible mark and
// flags the pair; the same pattern (one source, used on both sides) finds them on the server.

/** A regular-expression source (flags `gu`) matching one hidden character. */
export const HIDDEN_CHARS_SOURCE =
  '[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u206f\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff9-\\ufffb\\u{e0000}-\\u{e007f}]';

/** The hidden characters in a text, as U+XXXX names, in order of first appearance. */
export function hiddenCharacters(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(new RegExp(HIDDEN_CHARS_SOURCE, 'gu'))) found.add(codePointName(m[0]));
  return [...found];
}

function codePointName(ch: string): string {
  return 'U+' + ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
}
