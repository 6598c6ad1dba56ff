# Runs the cases of cases.json through the real Hugging Face tokenizers library; writes $OUT/results.json.
import json, os, sys
import tokenizers
from tokenizers import Tokenizer
C = json.load(open(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'cases.json')))
out = {'version': tokenizers.__version__, 'encode': [], 'pretok': [], 'normalize': [], 'decode': []}
EMPTY_MODEL = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
               "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": {}, "merges": []}
def shell(normalizer=None, pre=None, dec=None):
    return Tokenizer.from_str(json.dumps({"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": normalizer,
        "pre_tokenizer": pre, "post_processor": None, "decoder": dec, "model": EMPTY_MODEL}))
def guard(fn):
    try: return fn()
    except Exception as ex: return {'error': repr(ex)[:300]}
for c in C['encode']:
    def run():
        tok = Tokenizer.from_str(json.dumps(c['json']))
        rows = []
        for t in c['texts']:
            def one():
                e = tok.encode(t); e2 = tok.encode(t, add_special_tokens=False)
                return {'ids': e.ids, 'tokens': e.tokens, 'offsets': e.offsets, 'ids_nospecial': e2.ids,
                        'dec': tok.decode(e.ids, skip_special_tokens=False), 'dec_skip': tok.decode(e.ids, skip_special_tokens=True)}
            rows.append(guard(one))
        return {'rows': rows}
    r = guard(run); r['name'] = c['name']; out['encode'].append(r)
for c in C['pretok']:
    def run():
        pt = shell(pre=c['json']).pre_tokenizer
        return {'rows': [guard(lambda: pt.pre_tokenize_str(t)) for t in c['texts']]}
    out['pretok'].append(guard(run))
for c in C['normalize']:
    def run():
        n = shell(normalizer=c['json']).normalizer
        return {'rows': [guard(lambda: n.normalize_str(t)) for t in c['texts']]}
    out['normalize'].append(guard(run))
for c in C['decode']:
    def run():
        d = shell(dec=c['json']).decoder
        return {'rows': [guard(lambda: d.decode(l)) for l in c['lists']]}
    out['decode'].append(guard(run))
json.dump(out, open(os.path.join(os.environ.get('OUT', '/tmp'), 'results.json'), 'w'), ensure_ascii=False)
print('done', tokenizers.__version__, sum(len(x.get('rows', [])) for k in ('encode', 'pretok', 'normalize', 'decode') for x in out[k]))
