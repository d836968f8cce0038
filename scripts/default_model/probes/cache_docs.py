import sys
import time

import torch

sys.path.insert(0, "scripts/default_model/probes")
from probe import PUNCT, doc_ids, encode_ids, load_backbone

from latesearch.data import read_collection

torch.set_num_threads(2)
tok, model = load_backbone()
dm = tok.convert_tokens_to_ids("[unused1]")
skip = torch.tensor(sorted(tok.convert_tokens_to_ids(list(PUNCT))))
for corpus, out, maxlen in [
    (a.split(":")[0], a.split(":")[1], int(a.split(":")[2])) for a in sys.argv[1:]
]:
    docs = list(read_collection(corpus))
    t0 = time.time()
    vecs = encode_ids(model, doc_ids(tok, [d.full_text() for d in docs], dm, maxlen), skip)
    torch.save({"ids": [d.doc_id for d in docs], "vecs": vecs}, out)
    print(out, len(docs), f"{time.time() - t0:.0f}s", flush=True)
