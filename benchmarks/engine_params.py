"""The engine's parameters: the k table (`EngineParams.for_k`) against the rule that also
reads the index and the query (`EngineParams.auto`), on CPU.

    python benchmarks/engine_params.py --index NAME=FOLDER [NAME=FOLDER ...] \
        [--queries 100] [--threads 2] [--out benchmarks/results]

Each FOLDER is a compressed index built with the default model (SciFact documents, or the
synthetic passages of benchmarks/scale.py, made with `--keep`); its queries are SciFact's
test queries, each encoded once. Per query, interleaved (the order alternating), after 2
warm-ups: the engine at k=10 with the table's parameters ("table") and with `auto`'s
("auto"), search ms (stages 1-5, query encoding excluded) and overlap@10 with exhaustive
search over the same index (`mode="exact"`: every document scored from its codes), so the
overlap measures what the search loses, not what the codes lose. Also the index's
statistics and the parameters each query got.

Writes benchmarks/results/engine-params-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    REPO,
    RESULTS,
    collection,
    command,
    load_average,
    load_model,
    model_label,
    summary_ms,
)
from _common import write_results as _write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

STEM = "engine-params-cpu"
METHODS = ("table", "auto")
K = 10


def main() -> None:
    args = parse_args()
    import torch

    torch.manual_seed(0)
    colbert = load_model(None)
    torch.set_num_threads(args.threads)
    coll = collection("scifact", args.data)
    texts = list(coll.eval_sets()[0].queries.values())[: args.queries]
    payload: dict[str, Any] = {
        "benchmark": "engine_params",
        "command": command(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "model": model_label(None, colbert),
        "threads": args.threads,
        "queries": len(texts),
        "k": K,
        "indexes": {},
    }
    for spec in args.index:
        name, _, folder = spec.partition("=")
        print(f"== {name}: {folder}", flush=True)
        payload["indexes"][name] = measure(Path(folder), colbert, texts)
        _write_results(args.out, STEM, payload, markdown(payload))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", nargs="+", required=True, help="NAME=FOLDER of compressed indexes")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--queries", type=int, default=100, help="SciFact test queries")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    return p.parse_args()


def measure(folder: Path, colbert: Any, texts: list[str]) -> dict[str, Any]:
    """Both parameter choices on every query of `texts`, interleaved, against exhaustive
    search over the same index."""
    from latesearch import Index
    from latesearch.search.engine import EngineParams
    from latesearch.search.engine.params import ParamOverrides
    from latesearch.search.timing import SearchTimings

    index = Index.load(folder, colbert)
    engine = index.searcher.engine
    stats = engine.stats
    started = time.perf_counter()
    exact = [{h.doc_id for h in index.search(t, k=K, mode="exact")} for t in texts]
    exact_s = time.perf_counter() - started
    encoded = [index.model.encode_queries([t], return_mask=True) for t in texts]
    table = EngineParams.for_k(K, query_augmentation=stats.query_augmentation)
    params = {"table": table, "auto": ParamOverrides()}
    ms: dict[str, list[float]] = {m: [] for m in METHODS}
    overlap: dict[str, list[float]] = {m: [] for m in METHODS}
    scored: dict[str, list[int]] = {m: [] for m in METHODS}
    chosen: collections.Counter = collections.Counter()
    load_before = load_average()
    for i, (Q, mask) in enumerate([*encoded[:2], *encoded]):
        for method in METHODS if i % 2 == 0 else METHODS[::-1]:
            timings = SearchTimings()
            t0 = time.perf_counter()
            _, docs = engine.search(Q, mask, K, params[method], timings)[0]
            elapsed = 1000 * (time.perf_counter() - t0)
            if i < 2:
                continue
            ids = {index.store.doc_ids[int(d)] for d in docs}
            ms[method].append(elapsed)
            overlap[method].append(len(ids & exact[i - 2]) / K)
            scored[method].append(timings.n_candidates)
        if i >= 2:
            got = engine.params(params["auto"], K, mask)
            chosen[f"ncells={got.ncells}"] += 1
    return {
        "folder": str(folder),
        "stats": {**dataclasses.asdict(stats), "docs_per_cell": round(stats.docs_per_cell, 1)},
        "table": dataclasses.asdict(table),
        "auto_chosen": dict(sorted(chosen.items())),
        "exhaustive_s_per_query": round(exact_s / len(texts), 3),
        "ms": {m: summary_ms(v) for m, v in ms.items()},
        "overlap@10": {m: round(statistics.fmean(v), 4) for m, v in overlap.items()},
        "docs_scored_median": {m: statistics.median(v) for m, v in scored.items()},
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# The engine's parameters: the k table against `EngineParams.auto`",
        "",
        f"Machine: {describe(payload['machine'])}.  ",
        f"Model: {payload['model']}.  ",
        f"Command: `{payload['command']}` ({payload['date']}).",
        "",
        f"k = {payload['k']}, {payload['queries']} SciFact test queries each encoded once, "
        f"{payload['threads']} threads, the two choices interleaved per query after 2 "
        "warm-ups. ms: the engine's search (stages 1-5), median / p95. Overlap@10 with "
        'exhaustive search over the same index (`mode="exact"`, scored from the codes). '
        "Table: `EngineParams.for_k`; auto: `EngineParams.auto` (ncells from the documents "
        "per cell and the query's tokens).",
        "",
        "| index | docs | tokens | centroids | docs / cell | table (ncells, t_cs, ndocs) "
        "| auto's ncells (queries) | overlap@10 table / auto | ms table | ms auto "
        "| load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in payload["indexes"].items():
        s, t, ms = r["stats"], r["table"], r["ms"]
        chosen = ", ".join(f"{k.split('=')[1]} ({v})" for k, v in r["auto_chosen"].items())
        lines.append(
            f"| {name} | {s['n_docs']:,} | {s['n_tokens']:,} | {s['n_centroids']:,} "
            f"| {s['docs_per_cell']} | {t['ncells']}, {t['centroid_score_threshold']}, "
            f"{t['ndocs']} | {chosen} | {r['overlap@10']['table']:.3f} / "
            f"{r['overlap@10']['auto']:.3f} | {ms['table']['median']:.1f} / "
            f"{ms['table']['p95']:.1f} | {ms['auto']['median']:.1f} / {ms['auto']['p95']:.1f} "
            f"| {r['load_average_before'][0]:.1f}-{r['load_average_after'][0]:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
