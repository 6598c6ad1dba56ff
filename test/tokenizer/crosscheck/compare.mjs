// Runs cases.json through alignkit and compares with results.json from the real tokenizers library.
import fs from 'node:fs';
import { Tokenizer } from '../../../dist/src/tokenizer/index.js';
import { buildPreTokenizer } from '../../../dist/src/tokenizer/pre-tokenizers.js';
import { buildNormalizer } from '../../../dist/src/tokenizer/normalizers.js';
import { buildDecoder } from '../../../dist/src/tokenizer/decoders.js';
import { NormalizedString } from '../../../dist/src/tokenizer/normalized.js';
const C = JSON.parse(fs.readFileSync(process.env.CASES ?? new URL('./cases.json', import.meta.url)));
const resPath = process.argv[2];
const R = resPath ? JSON.parse(fs.readFileSync(resPath, 'utf8')) : null;
const cpIndex = (s) => { const m = new Map(); let cp = 0; for (let i = 0; i <= s.length; ) { m.set(i, cp); if (i === s.length) break; const c = s.charCodeAt(i); i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1; cp++; } return m; };
const conv = (s, offs) => { const m = cpIndex(s); return offs.map(([a, b]) => [m.get(a), m.get(b)]); };
const guard = (fn) => { try { return fn(); } catch (e) { return { error: String(e.message).slice(0, 200) }; } };
let total = 0, bad = 0; const fails = {};
const cmp = (kind, name, text, mine, theirs) => {
  total++;
  const a = JSON.stringify(mine), b = JSON.stringify(theirs);
  if (a !== b) { bad++; (fails[kind + ':' + name] ??= []).push({ text, mine, theirs }); }
};
C.encode.forEach((c, ci) => {
  const tok = guard(() => Tokenizer.fromJSON(c.json));
  c.texts.forEach((t, k) => {
    const th = R?.encode[ci].rows?.[k] ?? R?.encode[ci];
    const mine = tok.error ? tok : guard(() => { const e = tok.encodeWithOffsets(t); const e2 = tok.encode(t, { addSpecialTokens: false });
      return { ids: e.ids, tokens: e.tokens, offsets: conv(t, e.offsets), ids_nospecial: e2, dec: tok.decode(e.ids), dec_skip: tok.decode(e.ids, { skipSpecialTokens: true }) }; });
    if (R) {
      if (th.error || mine.error) cmp('encode-error', c.name, t, mine.error ?? 'ok', th.error ?? 'ok');
      else for (const f of ['ids', 'tokens', 'offsets', 'ids_nospecial', 'dec', 'dec_skip']) cmp('encode-' + f, c.name, t, mine[f], th[f]);
    }
  });
});
C.pretok.forEach((c, ci) => {
  const pt = guard(() => buildPreTokenizer(c.json));
  c.texts.forEach((t, k) => {
    const mine = pt.error ? pt : guard(() => pt.preTokenize([NormalizedString.fromOriginal(t)]).map((p) => [p.text, conv(t, [p.originalSpan(0, p.length)])[0]]));
    if (R) { const th = R.pretok[ci].rows?.[k] ?? R.pretok[ci]; cmp('pretok', JSON.stringify(c.json), t, mine, th.error ? th : th.map(([s, o]) => [s, o])); }
  });
});
C.normalize.forEach((c, ci) => {
  const n = guard(() => buildNormalizer(c.json));
  c.texts.forEach((t, k) => {
    const mine = n.error ? n : guard(() => { const ns = NormalizedString.fromOriginal(t); n.normalize(ns); return ns.text; });
    if (R) cmp('normalize', JSON.stringify(c.json), t, mine, R.normalize[ci].rows?.[k] ?? R.normalize[ci]);
  });
});
C.decode.forEach((c, ci) => {
  const d = guard(() => buildDecoder(c.json));
  c.lists.forEach((l, k) => {
    const mine = d.error ? d : guard(() => d.decodeChain(l).join(''));
    if (R) cmp('decode', JSON.stringify(c.json), l, mine, R.decode[ci].rows?.[k] ?? R.decode[ci]);
  });
});
if (R) {
  console.log('version', R.version, 'compared', total, 'mismatches', bad);
  for (const [k, v] of Object.entries(fails)) { console.log(`\n== ${k}: ${v.length}`); for (const x of v.slice(0, 3)) console.log(JSON.stringify(x).slice(0, 900)); }
} else console.log('ran locally without crash');
