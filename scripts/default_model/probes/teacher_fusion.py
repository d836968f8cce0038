"""Could a fused teacher beat the raw 384-d MaxSim teacher? Scores the multi-domain dev set
(make_dev.py) with raw MaxSim (no markers, no [MASK], doc_maxlen 128 unless --doc-maxlen
says otherwise), stemmed BM25 and the mean-pooled dense model, then fuses per-query
standardized scores: z(raw) + a * z(BM25) + b * z(dense), standardized over every dev
document. With --novel-positives it also reports 'sfn' and 'novel_macro' (evaluate_dev.py).
`--dense NAME=FOLDER` adds another mean-pooled bi-encoder (e.g. a stronger one) as a
signal, fused as z(raw) + a z(BM25) + c z(NAME).
Writes benchmarks/results/default-model/probe-teacher-fusion.json unless --out is given.

python scripts/default_model/probes/teacher_fusion.py --dev .work/dm/dev --raw .work/dm/raw
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from latesearch import ColBERT
from latesearch._atomic import write_json
from latesearch.indexing.bm25 import BM25Index
from latesearch.modeling.dense import DenseEncoder
from latesearch.training.devset import DevSet

sys.path.insert(0, "scripts/default_model")
from evaluate_dev import domain_scores, machine_info, novel_queries  # noqa: E402

OUT = Path("benchmarks/results/default-model/probe-teacher-fusion.json")
GRID = [(a, b) for a in (0.0, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0) for b in (0.0, 0.1, 0.2, 0.3)]
EXTRA_GRID = [(a, c) for a in (0.0, 0.1, 0.2) for c in (0.1, 0.2, 0.3, 0.5, 1.0)]


@torch.inference_mode()
def score_matrices(dev: DevSet, raw_model: str, doc_maxlen: int) -> dict[str, torch.Tensor]:
    """(queries x documents) scores of the three first-stage signals."""
    queries, docs = list(dev.queries.values()), list(dev.documents.items())
    model = ColBERT.from_pretrained(raw_model, device="cpu", doc_maxlen=doc_maxlen)
    raw = dev.score_matrix(
        model.encode_queries(queries), model.encode_documents([t for _, t in docs])
    )
    column = {d: j for j, (d, _) in enumerate(docs)}
    bm25 = torch.zeros(len(queries), len(docs))
    for i, hits in enumerate(BM25Index.build(docs).search(queries, len(docs))):
        for d, s in hits:
            bm25[i, column[d]] = s
    return {"raw": raw, "dense": dense_scores(dev, None, max_length=256), "bm25": bm25}


@torch.inference_mode()
def dense_scores(dev: DevSet, folder: str | None, max_length: int | None = None) -> torch.Tensor:
    """(queries x documents) cosine scores of a mean-pooled bi-encoder (None: the backbone),
    at `max_length` or its own length."""
    dense = DenseEncoder.from_pretrained(folder, max_length=max_length)
    dq = F.normalize(dense.encode(list(dev.queries.values())), dim=-1)
    dd = F.normalize(dense.encode(list(dev.documents.values())), dim=-1)
    return dq @ dd.T


def standardized(scores: torch.Tensor) -> torch.Tensor:
    return (scores - scores.mean(1, keepdim=True)) / scores.std(1, keepdim=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", required=True)
    ap.add_argument("--raw", required=True, help="make_raw.py's model folder")
    ap.add_argument("--doc-maxlen", type=int, default=128)
    ap.add_argument("--novel-positives", help="training triples (JSONL): adds sfn/novel_macro")
    ap.add_argument("--cache", help="default: .work/fusion/dev_scores[-LEN].pt")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--dense", action="append", default=[], metavar="NAME=FOLDER")
    args = ap.parse_args()
    extras = dict(item.split("=", 1) for item in args.dense)
    suffix = "" if args.doc_maxlen == 128 else f"-{args.doc_maxlen}"
    args.cache = args.cache or f".work/fusion/dev_scores{suffix}.pt"
    torch.set_num_threads(2)
    d = Path(args.dev)
    dev = DevSet.load(str(d / "queries.tsv"), str(d / "qrels.txt"), str(d / "collection.jsonl"))
    cache = Path(args.cache)
    ids = {"queries": list(dev.queries), "documents": list(dev.documents)}
    if cache.is_file():
        S = torch.load(cache)
        if S.pop("ids", None) != ids:
            sys.exit(f"{cache}: cached scores are for another dev set; delete it or pass --cache")
    else:
        S = score_matrices(dev, args.raw, args.doc_maxlen)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**S, "ids": ids}, cache)
    missing = [name for name in extras if name not in S]
    for name in missing:
        S[name] = dense_scores(dev, extras[name])
    if missing:
        torch.save({**S, "ids": ids}, cache)

    novel = novel_queries(dev.qrels, args.novel_positives) if args.novel_positives else None

    def scored(matrix: torch.Tensor) -> dict[str, float]:
        run = dev.top_k(matrix, 100)
        return {k: round(v, 4) for k, v in domain_scores(run, dev.qrels, novel).items()}

    results = {name: scored(S[name]) for name in ("raw", "bm25", "dense", *extras)}
    Z = {name: standardized(m) for name, m in S.items()}
    for a, b in GRID:
        results[f"raw+{a}*bm25+{b}*dense"] = scored(Z["raw"] + a * Z["bm25"] + b * Z["dense"])
    for name in extras:
        for a, c in EXTRA_GRID:
            results[f"raw+{a}*bm25+{c}*{name}"] = scored(Z["raw"] + a * Z["bm25"] + c * Z[name])
    for name, r in results.items():
        print(f"{name:26s}", r)
    write_json(
        args.out,
        {
            "what": "teacher candidates on the multi-domain dev set (nDCG@10 per domain and "
            "pooled); fused = z(raw) + a z(BM25) + b z(dense), per-query z over all dev documents; "
            "scripts/default_model/probes/teacher_fusion.py",
            "extra_dense": extras,
            "doc_maxlen": args.doc_maxlen,
            "machine": machine_info(),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
