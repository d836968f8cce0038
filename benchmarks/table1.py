"""Table 1 / Figure 5 of the paper: re-ranking BM25's top-k with ColBERT against the BM25
baseline and a cross-encoder on the same backbone.

Effectiveness on every judged query (and the novel subset where training judgements
exist); latency with one query per call (first --latency-queries queries, after warm-up);
FLOPs per query computed analytically (benchmarks/_flops.py: encoder matmuls + MaxSim;
document encoding is offline and not counted, as in the paper). The cross-encoder rows are
worked out for the same backbone: FLOPs from the real (query, candidate) token lengths
(capped at 512), latency extrapolated from the pairs/s measured here; there is no trained
cross-encoder, so no effectiveness. Usage: python benchmarks/table1.py [--model CKPT]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import _flops as flops  # noqa: E402

METRICS = "MRR@10 nDCG@10 R@50 R@100 R@1000 AP"


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=[100, 1000], help="BM25 top-k")
    p.add_argument("--stem", default="table1")
    args = p.parse_args()
    common.setup(args)
    from latesearch.evaluation import format_table

    machine = common.machine_info()
    colbert = common.load_model(args.model)
    label = common.model_label(args.model, colbert)
    pairs_per_s = cross_encoder_speed(colbert)
    results: dict[str, Any] = {
        "machine": machine, "model": label, "metrics": METRICS.split(),
        "flops": "analytical (benchmarks/_flops.py)", "latency": "one query per call, ms",
        "cross_encoder_pairs_per_s": pairs_per_s, "collections": {},
    }  # fmt: skip
    md_rows: list[dict[str, Any]] = []
    for name in args.collections:
        coll = common.collection(name, args.data)
        entry = collection_rows(coll, colbert, args, pairs_per_s)
        results["collections"][name] = entry
        md_rows += markdown_rows(name, entry)
    columns = list(dict.fromkeys(k for r in md_rows for k in r))
    text = common.header(
        "Table 1: re-ranking BM25 top-k", machine, label,
        f"Latency: one query per call, mean over the first {args.latency_queries} queries "
        "(CPU). FLOPs: analytical. Cross-encoder: same backbone, FLOPs from real token "
        f"lengths, latency extrapolated from {pairs_per_s:.0f} pairs/s measured here; "
        "untrained, so no effectiveness.",
    )  # fmt: skip
    table = format_table(md_rows, columns)
    common.write_results(args.out, args.stem, results, f"{text}\n{table}\n")


def collection_rows(coll, colbert, args, pairs_per_s: float) -> dict[str, Any]:
    """Every method's effectiveness, latency and FLOPs on one collection."""
    index = common.colbert_index(coll, colbert)
    bm25 = index.searcher.bm25
    sets = coll.eval_sets()
    sample = list(sets[0].queries.values())[: args.latency_queries]
    cfg = colbert.config
    shape = flops.backbone_shape(colbert.backbone.config)
    query_flops = flops.colbert_query_flops(shape, cfg.query_maxlen, cfg.dim)
    doc_wp = doc_wordpieces(index, colbert)
    q_wp = [len(colbert.tokenizer.hf.tokenize(q)) for q in sample]
    rows: dict[str, dict[str, Any]] = {}
    deepest = max(args.depths)
    rows["BM25 (bm25s)"] = common.measure(
        lambda texts: bm25.search(texts, deepest), sets, sample, METRICS
    )
    rows["BM25 (bm25s)"]["flops_per_query"] = None
    for depth in args.depths:

        def rerank(texts: list[str], depth: int = depth) -> list[list[tuple[str, float]]]:
            hits = index.search(texts, k=depth, mode="rerank", bm25_k=depth)
            return [common.ranking(h) for h in hits]

        row = common.measure(rerank, sets, sample, METRICS, index=index)
        cands = bm25.search(sample, depth)
        store = index.store
        tokens = [sum(int(store.doclens[store.doc_index(d)]) for d, _ in c) for c in cands]
        n_cands = float(np.mean([len(c) for c in cands]))
        maxsim = np.mean([flops.maxsim_flops(cfg.query_maxlen, n, cfg.dim) for n in tokens])
        row.update(
            candidates_per_query=n_cands,
            flops_per_query=query_flops + float(maxsim),
            flops_maxsim_per_query=float(maxsim),
            flops_query_encoder=query_flops,
        )
        rows[f"ColBERT re-rank BM25 top-{depth}"] = row
        lengths = [
            [min(512, 3 + lq + doc_wp[d]) for d, _ in c] for lq, c in zip(q_wp, cands, strict=True)
        ]
        cross = np.mean([flops.cross_encoder_flops(shape, ls) for ls in lengths])
        rows[f"cross-encoder, same backbone, top-{depth}"] = {
            "flops_per_query": float(cross),
            "latency_ms": {"mean": 1000 * n_cands / pairs_per_s, "estimated": True},
            "candidates_per_query": n_cands,
            "mean_pair_tokens": float(np.mean([np.mean(ls) for ls in lengths if ls])),
        }
    return {"n_docs": len(index), "index": str(index.folder), "sets": [s.name for s in sets],
            "n_queries": {s.name: len(s.queries) for s in sets}, "methods": rows}  # fmt: skip


def markdown_rows(name: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    full, novel = entry["sets"][0], entry["sets"][1:]
    for method, row in entry["methods"].items():
        eff = row.get("effectiveness") or {}
        md: dict[str, Any] = {"collection": name, "method": method}
        md["MRR@10"] = eff[full]["MRR@10"] if full in eff else None
        md["nDCG@10"] = eff[full]["nDCG@10"] if full in eff else None
        md["nDCG@10 novel"] = eff[novel[0]]["nDCG@10"] if novel and novel[0] in eff else None
        md["R@100"] = eff[full]["R@100"] if full in eff else None
        lat = row["latency_ms"]
        md["latency ms"] = f"{lat['mean']:.1f}" + (" (est.)" if lat.get("estimated") else "")
        fl = row.get("flops_per_query")
        md["GFLOPs/query"] = None if fl is None else f"{fl / 1e9:.2f}"
        out.append(md)
    return out


def doc_wordpieces(index, colbert) -> dict[str, int]:
    """WordPiece count of every document's text (untruncated), by doc id."""
    from latesearch.indexing.components import bm25_documents

    tok, out, batch = colbert.tokenizer.hf, {}, []
    for item in [*bm25_documents(index.store), None]:
        if item is not None:
            batch.append(item)
        if batch and (item is None or len(batch) == 512):
            enc = tok([t for _, t in batch], add_special_tokens=False)["input_ids"]
            out.update({d: len(ids) for (d, _), ids in zip(batch, enc, strict=True)})
            batch = []
    return out


@torch.inference_mode()
def cross_encoder_speed(colbert, n_pairs: int = 32, length: int = 256) -> float:
    """(query, document) pairs per second through the backbone at `length` tokens."""
    ids = torch.randint(1000, 20000, (n_pairs, length))
    mask = torch.ones_like(ids)
    colbert.backbone(input_ids=ids[:4], attention_mask=mask[:4])  # warm-up
    started = time.perf_counter()
    colbert.backbone(input_ids=ids, attention_mask=mask)
    return n_pairs / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
