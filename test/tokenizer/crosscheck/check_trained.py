# Loads the tokenizer saved by make_trained.mjs with the Python tokenizers and transformers libraries and compares
# ids, decodings, the rendered chat and the assistant mask (return_assistant_tokens_mask) with alignkit's.
import json, os
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast
import sys
D = sys.argv[1] if len(sys.argv) > 1 else '/tmp/alignkit-trained'
C = json.load(open(os.path.join(D, 'trained_cases.json')))
tok = Tokenizer.from_file(os.path.join(D, 'trained', 'tokenizer.json'))
bad = [t for t, ids, dec in zip(C['texts'], C['ids'], C['dec']) if tok.encode(t).ids != ids or tok.decode(ids, skip_special_tokens=False) != dec]
print('tokenizers: texts', len(C['texts']), 'mismatches', len(bad), bad[:2])
hf = AutoTokenizer.from_pretrained(os.path.join(D, 'trained'))
print('transformers class', type(hf).__name__, 'eos', hf.eos_token, hf.eos_token_id, 'len', len(hf))
out = hf.apply_chat_template(C['msgs'], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
print('trained chat ids equal', list(out['input_ids']) == C['chat']['inputIds'], 'mask equal', list(out['assistant_masks']) == C['chat']['assistantMask'])
print('text equal', hf.apply_chat_template(C['msgs'], tokenize=False) == C['chat']['text'])
