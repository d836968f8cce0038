import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, "scripts/default_model/probes")
from probe import PUNCT, doc_ids, encode_ids, load_backbone

from latesearch.data import read_collection

torch.set_num_threads(2)
rng = random.Random(1)
used = {
    line.split("\t")[0][4:]
    for line in Path(".work/dm/data/queries.tsv").read_text().splitlines(True)
    if line.startswith("vws:")
}
docs = {d.doc_id: d for d in read_collection("../shared/data/vaswani/doc-text.trec")}
pool = [d for d, doc in docs.items() if len(doc.text.split()) >= 30 and d not in used]
pick = rng.sample(pool, 150)
tok, model = load_backbone()
dm = tok.convert_tokens_to_ids("[unused1]")
skip = torch.tensor(sorted(tok.convert_tokens_to_ids(list(PUNCT))))
qs, rest = {}, {}
for d in pick:
    w = docs[d].text.split()
    n = rng.randint(6, 12)
    s = rng.randrange(0, len(w) - n)
    qs[d] = " ".join(w[s : s + n])
    rest[d] = " ".join(w[:s] + w[s + n :])
c = torch.load(".work/p2/vaswani-marker.pt")
vecs = encode_ids(model, doc_ids(tok, [rest[d] for d in pick], dm, 180), skip)
pos = {d: i for i, d in enumerate(c["ids"])}
for d, v in zip(pick, vecs, strict=False):
    c["vecs"][pos[d]] = v
torch.save(c, ".work/p2/vwdev-marker.pt")
Path(".work/p2/vwdev_queries.tsv").write_text("".join(f"vq{d}\t{qs[d]}\n" for d in pick))
Path(".work/p2/vwdev_qrels.txt").write_text("".join(f"vq{d} 0 {d} 1\n" for d in pick))
print("ok", len(pick))
