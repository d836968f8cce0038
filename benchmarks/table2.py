"""Table 2 of the paper: end-to-end retrieval from the whole collection (ColBERT with faiss
IVFPQ candidates + exact MaxSim over the uncompressed index, and latesearch's default: the
engine over a 2-bit compressed index) against BM25, the dense bi-encoder of the same
backbone, ColBERT re-ranking BM25's top-1000, and exhaustive ColBERT (every document scored).

MRR@10, nDCG@10, R@50/100/200/1000 and MAP on every judged query (and the novel subset
where training judgements exist); latency with one query per call on the first
--latency-queries queries (CPU, after warm-up). Usage:
python benchmarks/table2.py [--model CKPT] [--collections scifact vaswani] [--no-exact]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

METRICS = "MRR@10 nDCG@10 R@50 R@100 R@200 R@1000 AP"
K = 1000


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--no-exact", action="store_true", help="skip exhaustive ColBERT")
    p.add_argument("--exact-latency-queries", type=int, default=20,
                   help="queries timed for exhaustive ColBERT (20)")  # fmt: skip
    p.add_argument("--no-dense", action="store_true", help="skip the dense bi-encoder")
    p.add_argument("--k-prime", type=int, default=None, help="e2e: neighbours per vector")
    p.add_argument("--nprobe", type=int, default=None, help="e2e: partitions probed")
    p.add_argument("--stem", default="table2")
    p.add_argument("--merge", action="store_true",
                   help="keep other collections of an existing result (same model)")  # fmt: skip
    args = p.parse_args()
    common.setup(args)
    from latesearch.evaluation import format_table

    machine = common.machine_info()
    colbert = common.load_model(args.model)
    label = common.model_label(args.model, colbert)
    results: dict[str, Any] = {"machine": machine, "model": label, "metrics": METRICS.split(),
                               "k": K, "latency": "one query per call, ms",
                               "collections": {}}  # fmt: skip
    md_rows: list[dict[str, Any]] = []
    previous = args.out / f"{args.stem}.json"
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("model") == label:
            results["collections"].update(old["collections"])
    for name in args.collections:
        coll = common.collection(name, args.data)
        results["collections"][name] = collection_rows(coll, colbert, args)
    for name, entry in results["collections"].items():
        for method, row in entry["methods"].items():
            md: dict[str, Any] = {"collection": name, "method": method}
            eff = row["effectiveness"]
            full = entry["sets"][0]
            for metric in ("MRR@10", "nDCG@10"):
                md[metric] = eff[full][metric]
            novel = entry["sets"][1:]
            md["nDCG@10 novel"] = eff[novel[0]]["nDCG@10"] if novel else None
            for metric in ("R@50", "R@200", "R@1000"):
                md[metric] = eff[full][metric]
            md["latency ms"] = f"{row['latency_ms']['mean']:.1f}"
            md_rows.append(md)
    columns = list(dict.fromkeys(k for r in md_rows for k in r))
    text = common.header(
        "Table 2: end-to-end retrieval (top-1000)", machine, label,
        f"Latency: one query per call, mean over the first {args.latency_queries} queries "
        f"(exhaustive: first {args.exact_latency_queries}), CPU. Dense: mean-pooled "
        "all-MiniLM-L6-v2, brute force, cosine. SciFact-novel: test queries none of whose "
        "relevant documents is relevant in qrels/train.tsv.",
    )  # fmt: skip
    common.write_results(args.out, args.stem, results,
                         f"{text}\n{format_table(md_rows, columns)}\n")  # fmt: skip


def collection_rows(coll, colbert, args) -> dict[str, Any]:
    index = common.colbert_index(coll, colbert)
    bm25 = index.searcher.bm25
    sets = coll.eval_sets()
    sample = list(sets[0].queries.values())[: args.latency_queries]
    rows: dict[str, dict[str, Any]] = {}
    rows["BM25 (bm25s)"] = common.measure(lambda t: bm25.search(t, K), sets, sample, METRICS)
    if not args.no_dense:
        from latesearch.modeling.dense import DenseEncoder

        encoder = DenseEncoder.from_pretrained()
        dense = common.dense_index(coll, encoder)
        rows["dense MiniLM-L6 (mean pooled)"] = common.measure(
            lambda t: dense.search(t, encoder, K), sets, sample, METRICS
        )

    def colbert_search(mode: str, **options: Any):
        def search(texts: list[str]) -> list[list[tuple[str, float]]]:
            hits = index.search(texts, k=K, mode=mode, **options)
            return [common.ranking(h) for h in hits]

        return search

    rows["ColBERT re-rank BM25 top-1000"] = common.measure(
        colbert_search("rerank", bm25_k=K), sets, sample, METRICS, index=index
    )
    e2e = colbert_search("e2e", k_prime=args.k_prime, nprobe=args.nprobe)
    rows["ColBERT end-to-end (faiss IVFPQ)"] = common.measure(
        e2e, sets, sample, METRICS, index=index
    )
    compressed = common.engine_index(coll, index, nbits=2)

    def engine(texts: list[str]) -> list[list[tuple[str, float]]]:
        return [common.ranking(h) for h in compressed.search(texts, k=K)]

    rows["ColBERT engine (2-bit residuals, default)"] = common.measure(
        engine, sets, sample, METRICS, index=compressed
    )
    if not args.no_exact:
        rows["ColBERT exhaustive"] = common.measure(
            colbert_search("exact"), sets, sample[: args.exact_latency_queries], METRICS,
            index=index,
        )  # fmt: skip
    return {"n_docs": len(index), "index": str(index.folder), "sets": [s.name for s in sets],
            "n_queries": {s.name: len(s.queries) for s in sets}, "methods": rows}  # fmt: skip


if __name__ == "__main__":
    main()
