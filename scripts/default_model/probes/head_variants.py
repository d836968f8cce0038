"""Step-0 query formats and 128-d heads on the multi-domain dev set (make_dev.py).

Documents and queries are encoded once per format with an identity 384-d head (unit
vectors); any bias-free head W then scores as normalize(W x), since normalize(W h) ==
normalize(W h/|h|). Heads: identity (384), PCA of the uncentered token second moment (v1's
start), and PCA after projecting out the mean token direction. Prints nDCG@10 per domain.

python scripts/default_model/probes/head_variants.py --dev .work/dm/dev --texts A B C
"""

from __future__ import annotations

import argparse
import random
import sys

import torch
import torch.nn.functional as F

from latesearch import ColBERT
from latesearch._atomic import write_json
from latesearch.data import read_collection
from latesearch.modeling.default import backbone_path
from latesearch.modeling.projection import pca_projection, token_moments
from latesearch.training.devset import DevSet

sys.path.insert(0, "scripts/default_model")
from evaluate_dev import domain_scores, machine_info  # noqa: E402


def identity_model(markers: bool, augmentation: bool) -> ColBERT:
    model = ColBERT.from_pretrained(
        backbone_path(), dim=384, device="cpu", doc_maxlen=128, markers=markers,
        query_augmentation=augmentation,
    )
    with torch.no_grad():
        model.linear.weight.copy_(torch.eye(384))
    return model.eval()


def score(dev: DevSet, Q: torch.Tensor, docs: list[torch.Tensor], W: torch.Tensor | None) -> dict:
    if W is not None:
        Q = F.normalize(Q @ W.T, dim=-1)
        docs = [F.normalize(d @ W.T, dim=-1) for d in docs]
    return {k: round(v, 4) for k, v in domain_scores(dev.rank(Q, docs), dev.qrels).items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", default=".work/dm/dev")
    ap.add_argument("--texts", nargs="+", required=True)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dev = DevSet.load(f"{args.dev}/queries.tsv", f"{args.dev}/qrels.txt",
                      f"{args.dev}/collection.jsonl")
    rng = random.Random(0)
    sample: list[str] = []
    for path in args.texts:
        docs = [d.full_text() for d in read_collection(path)]
        sample += rng.sample(docs, min(200, len(docs)))
    results = {}
    for markers in (True, False):
        base = identity_model(markers, True)
        mean, moment = token_moments(base, sample)
        heads = {
            "id384": None,
            "pca128": pca_projection(moment, 128)[0],
            "pca128-nomean": pca_projection(moment, 128, remove=mean)[0],
        }
        docs = base.encode_documents(list(dev.documents.values()))
        for aug in (True, False):
            Q = identity_model(markers, aug).encode_queries(list(dev.queries.values()))
            for name, W in heads.items():
                key = f"markers={markers} aug={aug} head={name}"
                results[key] = score(dev, Q, docs, W)
                print(key, results[key], flush=True)
    if args.out:
        write_json(args.out, {
            "what": "step-0 query formats x bias-free heads on the multi-domain dev set "
            "(nDCG@10, doc_maxlen 128); scripts/default_model/probes/head_variants.py",
            "machine": machine_info(),
            "results": results,
        })


if __name__ == "__main__":
    main()
