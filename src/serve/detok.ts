// The text of one choice as its tokens arrive: decoded with the tokenizer (special tokens dropped), released in
// pieces that never end inside a UTF-8 character (a byte-level token can carry half of one) nor in what may be
// the start of a stop string, and cut before the first stop string once one appears (OpenAI's `stop`: the stop
// text itself is not returned).
import type { Tokenizer } from '../tokenizer/index.js';

export class ChoiceText {
  readonly tokens: number[] = [];
  /** characters of the final text released so far */
  private released = 0;
  private text = '';
  stopped = false;
  private readonly hold: number;

  constructor(
    private readonly tok: Tokenizer,
    private readonly stop: readonly string[],
    private readonly skipIds: ReadonlySet<number>,
  ) {
    this.hold = stop.reduce((m, s) => Math.max(m, s.length - 1), 0);
  }

  /** Adds a token; returns the text that can be released now (possibly ''). After a stop string, nothing. */
  push(token: number): string {
    if (this.stopped) return '';
    this.tokens.push(token);
    if (this.skipIds.has(token)) return '';
    this.text = this.tok.decode(this.tokens, { skipSpecialTokens: true });
    if (this.stop.length) {
      const from = Math.max(0, this.released - this.hold);
      let cut = -1;
      for (const s of this.stop) {
        const i = this.text.indexOf(s, from);
        if (i >= 0 && (cut < 0 || i < cut)) cut = i;
      }
      if (cut >= 0) {
        this.stopped = true;
        this.text = this.text.slice(0, cut);
        return this.take(this.text.length);
      }
    }
    let safe = this.text.length - this.hold;
    while (safe > this.released && this.text.charCodeAt(safe - 1) === 0xfffd) safe--;
    return this.take(safe);
  }

  /** The rest of the text (at the end of generation nothing is held back). */
  flush(): string {
    return this.take(this.text.length);
  }

  /** The whole text so far (released or not). */
  get fullText(): string {
    return this.text;
  }

  private take(upTo: number): string {
    if (upTo <= this.released) return '';
    const s = this.text.slice(this.released, upTo);
    this.released = upTo;
    return s;
  }
}
