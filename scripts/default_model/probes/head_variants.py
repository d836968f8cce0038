"""Step-0 query formats and 128-d heads on the multi-domain dev set (make_dev.py).

Documents and queries are encoded once per format with an identity 384-d head (unit
vectors); any bias-free head W then scores as normalize(W x), since normalize(W h) ==
normalize(W h/|h|). Heads: identity (384), PCA of the uncentered token second moment (v1's
start), and PCA after projecting out the mean token direction. Prints nDCG@10 per domain.

python scripts/default_model/probes/head_variants.py --dev .work/dm/dev --texts A B C
"""

from __future__ import annotations

import argparse
import json
import random

import torch
import torch.nn.functional as F

from latesearch import ColBERT
from latesearch.data import read_collection
from latesearch.evaluation.metrics import evaluate_run
from latesearch.modeling.default import backbone_path
from latesearch.modeling.projection import pca_projection, token_second_moment
from latesearch.scoring import maxsim, pad_documents
from latesearch.training.devset import DevSet


def identity_model(markers: bool, augmentation: bool) -> ColBERT:
    model = ColBERT.from_pretrained(
        backbone_path(), dim=384, device="cpu", doc_maxlen=128, markers=markers,
        query_augmentation=augmentation,
    )
    with torch.no_grad():
        model.linear.weight.copy_(torch.eye(384))
    return model.eval()


@torch.inference_mode()
def token_mean(model: ColBERT, texts: list[str]) -> torch.Tensor:
    total, count = torch.zeros(384, dtype=torch.float64), 0
    for start in range(0, len(texts), 32):
        batch = model.tokenizer.documents(texts[start : start + 32])
        states = model.backbone(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        kept = states[batch.output_mask].to(torch.float64)
        total += kept.sum(0)
        count += len(kept)
    return total / count


def score(dev: DevSet, Q: torch.Tensor, docs: list[torch.Tensor], W: torch.Tensor | None) -> dict:
    qids, dids = list(dev.queries), list(dev.documents)
    if W is not None:
        Q = F.normalize(Q @ W.T, dim=-1)
        docs = [F.normalize(d @ W.T, dim=-1) for d in docs]
    scores = torch.empty(len(qids), len(dids))
    for s in range(0, len(dids), 512):
        D, mask = pad_documents(docs[s : s + 512])
        scores[:, s : s + D.shape[0]] = maxsim(Q, D, mask)
    top = scores.topk(100, dim=1)
    run = {
        q: {dids[j]: float(v) for v, j in zip(vals.tolist(), idx.tolist(), strict=True)}
        for q, vals, idx in zip(qids, top.values, top.indices, strict=True)
    }
    out = {}
    for domain in ("sf", "vw", "demo"):
        judged = {q: r for q, r in dev.qrels.items() if q.startswith(f"{domain}:")}
        out[domain] = evaluate_run({q: run[q] for q in judged}, judged, ["nDCG@10"]).aggregate[
            "nDCG@10"
        ]
    out["all"] = evaluate_run(run, dev.qrels, ["nDCG@10"]).aggregate["nDCG@10"]
    return {k: round(v, 4) for k, v in out.items()}


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
        M = token_second_moment(base, sample)
        mu = token_mean(base, sample)
        u = (mu / mu.norm()).unsqueeze(1)
        proj = torch.eye(384, dtype=torch.float64) - u @ u.T
        heads = {
            "id384": None,
            "pca128": pca_projection(M, 128)[0],
            "pca128-nomean": (pca_projection(proj @ M @ proj, 128)[0].double() @ proj).float(),
        }
        docs = base.encode_documents(list(dev.documents.values()))
        for aug in (True, False):
            Q = identity_model(markers, aug).encode_queries(list(dev.queries.values()))
            for name, W in heads.items():
                key = f"markers={markers} aug={aug} head={name}"
                results[key] = score(dev, Q, docs, W)
                print(key, results[key], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
