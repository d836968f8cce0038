"""Table 2 of the paper: end-to-end retrieval from the whole collection (ColBERT with faiss
IVFPQ candidates + exact MaxSim over the uncompressed index, and latesearch's default: the
engine over a 2-bit compressed index, with and without its fp16 tier) against BM25, the
dense bi-encoder of the same backbone, ColBERT re-ranking BM25's top-1000, and exhaustive
ColBERT (every document scored).

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
            md["ms k=10"] = f"{row['latency_ms_k10']['mean']:.1f}"
            md["ms k=1000"] = f"{row['latency_ms']['mean']:.1f}"
            md_rows.append(md)
    columns = list(dict.fromkeys(k for r in md_rows for k in r))
    text = common.header(
        "Table 2: end-to-end retrieval (top-1000)", machine, label,
        f"Latency: one query per call, query encoding included, mean over the first "
        f"{args.latency_queries} queries (exhaustive: first {args.exact_latency_queries}), "
        "CPU, at k=10 and at k=1000 (the engine's defaults follow k; re-ranking always "
        "re-scores BM25's top 1000). Dense: mean-pooled "
        "all-MiniLM-L6-v2, brute force, cosine. SciFact-novel: test queries none of whose "
        "relevant documents is relevant in qrels/train.tsv.",
    )  # fmt: skip
    common.write_results(args.out, args.stem, results,
                         f"{text}\n{format_table(md_rows, columns)}\n")  # fmt: skip
    if args.stem == "table2" and set(results["collections"]) >= {"scifact", "vaswani"}:
        write_readme_table(results, command=common.command())


README_BLOCK = ("<!-- table2: begin -->", "<!-- table2: end -->")


def write_readme_table(results: dict[str, Any], *, command: str) -> None:
    """Replace README.md's block between README_BLOCK's markers with the compact table:
    nDCG@10 on SciFact, SciFact-novel and Vaswani, and ms per query at k=10."""
    readme = common.REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    if README_BLOCK[0] not in text or README_BLOCK[1] not in text:
        return
    sci, vas = results["collections"]["scifact"], results["collections"]["vaswani"]
    lines = [
        README_BLOCK[0],
        f"<!-- written by `{command}`; do not edit by hand -->",
        "| method | SciFact nDCG@10 | SciFact-novel | Vaswani | ms/query SciFact | Vaswani |",
        "|---|---|---|---|---|---|",
    ]
    for method, row in sci["methods"].items():
        other = vas["methods"][method]
        eff = row["effectiveness"]
        lines.append(
            f"| {method} | {eff['scifact']['nDCG@10']:.3f} | "
            f"{eff['scifact-novel']['nDCG@10']:.3f} | "
            f"{other['effectiveness']['vaswani']['nDCG@10']:.3f} | "
            f"{row['latency_ms_k10']['mean']:.1f} | {other['latency_ms_k10']['mean']:.1f} |"
        )
    lines.append(README_BLOCK[1])
    head, rest = text.split(README_BLOCK[0], 1)
    tail = rest.split(README_BLOCK[1], 1)[1]
    common.write_text(readme, head + "\n".join(lines) + tail)
    print(f"updated {readme}")


def collection_rows(coll, colbert, args) -> dict[str, Any]:
    from latesearch.evaluation.runner import latency_ms

    index = common.colbert_index(coll, colbert)
    bm25 = index.searcher.bm25
    sets = coll.eval_sets()
    sample = list(sets[0].queries.values())[: args.latency_queries]
    compressed = common.engine_index(coll, index, nbits=2, keep_full=True)
    codes_only = common.engine_index(coll, index, nbits=2)

    def searcher(target: Any, mode: str | None = None, **options: Any):
        def make(k: int):
            mode_arg = {} if mode is None else {"mode": mode}
            return lambda texts: [
                common.ranking(h) for h in target.search(texts, k=k, **mode_arg, **options)
            ]

        return make

    # name -> (k -> search function, index for per-stage timings, latency sample)
    methods: dict[str, tuple[Any, Any, list[str]]] = {
        "BM25 (bm25s)": (lambda k: lambda t: bm25.search(t, k), None, sample),
    }
    if not args.no_dense:
        from latesearch.modeling.dense import DenseEncoder

        encoder = DenseEncoder.from_pretrained()
        dense = common.dense_index(coll, encoder)
        methods["dense MiniLM-L6 (mean pooled)"] = (
            lambda k: lambda t: dense.search(t, encoder, k), None, sample
        )  # fmt: skip
    methods["ColBERT re-rank BM25 top-1000"] = (searcher(index, "rerank", bm25_k=K), index, sample)
    methods["ColBERT end-to-end (faiss IVFPQ)"] = (
        searcher(index, "e2e", k_prime=args.k_prime, nprobe=args.nprobe), index, sample
    )  # fmt: skip
    methods["ColBERT engine, 2-bit + fp16 tier (default)"] = (
        searcher(compressed), compressed, sample
    )  # fmt: skip
    methods["ColBERT engine, 2-bit alone (keep_full=False)"] = (
        searcher(codes_only), codes_only, sample
    )  # fmt: skip
    if not args.no_exact:
        methods["ColBERT exhaustive"] = (
            searcher(index, "exact"), index, sample[: args.exact_latency_queries]
        )  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    for name, (make, timed_index, queries) in methods.items():
        rows[name] = common.measure(make(K), sets, queries, METRICS, index=timed_index)
        rows[name]["latency_ms_k10"] = latency_ms(make(10), queries, warmup=2)
    return {"n_docs": len(index), "index": str(index.folder), "sets": [s.name for s in sets],
            "n_queries": {s.name: len(s.queries) for s in sets}, "methods": rows}  # fmt: skip


if __name__ == "__main__":
    main()
