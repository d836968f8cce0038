"""Hybrid search against its two components: BM25 alone, the ColBERT engine alone
(mode="e2e"), and mode="hybrid" with reciprocal rank fusion and with normalized score
fusion (ColBERT weight 0.3, 0.5, 0.7), on SciFact and Vaswani with the default model and
the default index (2 bits with the fp16 tier, the compressed copy of the prebuilt index).

nDCG@10 and R@100 on every judged query (runs of depth 100); latency with one query per
call on the first --latency-queries queries (after 2 warm-ups), query encoding included.

    python benchmarks/hybrid.py [--collections scifact vaswani] [--latency-queries 100]

Writes benchmarks/results/hybrid-cpu.json and .md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

METRICS = "nDCG@10 R@100"
DEPTH = 100


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.setup(args)
    colbert = common.load_model(args.model)
    payload: dict[str, Any] = {"benchmark": "hybrid", "machine": common.machine_info(),
                               "model": common.model_label(args.model, colbert),
                               "collections": {}}  # fmt: skip
    for name in args.collections:
        coll = common.collection(name, args.data)
        index = common.engine_index(coll, common.colbert_index(coll, colbert), keep_full=True)
        sets = coll.eval_sets()
        sample = list(sets[0].queries.values())[: args.latency_queries]
        rows = {}
        for label, search in methods(index).items():
            print(f"{name}: {label}", flush=True)
            rows[label] = common.measure(search, sets, sample, METRICS)
        payload["collections"][name] = {"index": str(index.folder), "methods": rows,
                                        "sets": {s.name: len(s.queries) for s in sets}}  # fmt: skip
        common.write_results(args.out, "hybrid-cpu", payload, markdown(payload))
    print(markdown(payload))


def methods(index: Any) -> dict[str, Any]:
    bm25 = index.searcher.bm25

    def lexical(texts: list[str]) -> list[list[tuple[str, float]]]:
        return bm25.search(texts, DEPTH)

    def searching(**options: Any):
        def search(texts: list[str]) -> list[list[tuple[str, float]]]:
            return [common.ranking(h) for h in index.search(texts, k=DEPTH, **options)]

        return search

    return {
        "bm25": lexical,
        "colbert (e2e)": searching(mode="e2e"),
        "hybrid rrf": searching(mode="hybrid", fusion="rrf"),
        **{f"hybrid score w={w}": searching(mode="hybrid", fusion="score", hybrid_weight=w)
           for w in (0.3, 0.5, 0.7)},
    }  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    lines = [common.header("Hybrid search: BM25 + ColBERT fused", payload["machine"],
                           payload["model"]), ""]  # fmt: skip
    lines.append("Runs of depth 100; `hybrid` fuses the BM25 and engine top 100 "
                 "(`latesearch.search.fusion`). Latency: one query per call, encoding "
                 "included, median / p95 ms.")  # fmt: skip
    for name, coll in payload["collections"].items():
        sets = list(coll["sets"])
        head = " | ".join(f"{m} {s}" for s in sets for m in METRICS.split())
        counts = ", ".join(f"{s}: {n} queries" for s, n in coll["sets"].items())
        lines += ["", f"### {name} ({counts})", "",
                  f"| method | {head} | ms median | ms p95 |",
                  "|---|" + "---:|" * (len(sets) * 2 + 2)]  # fmt: skip
        for label, row in coll["methods"].items():
            cells = [f"{row['effectiveness'][s][m]:.4f}" for s in sets for m in METRICS.split()]
            lat = row["latency_ms"]
            lines.append(f"| {label} | {' | '.join(cells)} | {lat['median']:.1f} | "
                         f"{lat['p95']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
