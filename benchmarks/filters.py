"""Filtered search on SciFact: recall and latency at 50%, 10%, 1% and 0.1% selectivity.

SciFact carries no metadata, so a synthetic field is added: a copy of the default index
(the engine's, 2 bits with the fp16 tier; .work/eval/filtered/scifact) whose doc store
gives every document `{"bucket": (idx * 7919) % 1000}`, a uniform spread of 0-999. The
filter `{"bucket": {"$lt": B}}` then keeps B/1000 of the collection.

For each selectivity, on every SciFact test query: recall@10 of the engine (mode="e2e",
k=10, defaults) against exhaustive MaxSim over the same subset (mode="exact" with the
filter), and, on the first --latency-queries queries, one query per call, interleaved:
latency of the filtered engine against the unfiltered engine (median / p95, encoding
included). The filter restricts the candidates before scoring (all allowed documents are
candidates when there are at most `ndocs` of them).

    python benchmarks/filters.py [--latency-queries 200]

Writes benchmarks/results/filters-cpu.json and .md.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

BUCKETS = {"50%": 500, "10%": 100, "1%": 10, "0.1%": 1}


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    args = p.parse_args()
    common.setup(args)
    from latesearch import Index

    colbert = common.load_model(args.model)
    coll = common.collection("scifact", args.data)
    source = common.engine_index(coll, common.colbert_index(coll, colbert), keep_full=True)
    index = Index.load(with_buckets(source.folder), colbert)
    queries = list(coll.eval_sets()[0].queries.values())
    sample = queries[: args.latency_queries]
    rows: dict[str, Any] = {}
    for label, bucket in BUCKETS.items():
        spec = {"bucket": {"$lt": bucket}}
        allowed = int(index.store.matching(spec).size)
        print(f"{label}: {allowed} documents", flush=True)
        rows[label] = {"filter": spec, "documents": allowed,
                       "recall_at_10": recall(index, queries, spec),
                       "latency_ms": latency(index, sample, spec)}  # fmt: skip
    payload = {"benchmark": "filters", "machine": common.machine_info(),
               "model": common.model_label(args.model, colbert), "index": str(index.folder),
               "documents": len(index), "queries": len(queries), "rows": rows}  # fmt: skip
    common.write_results(args.out, "filters-cpu", payload, markdown(payload))
    print(markdown(payload))


def with_buckets(source: Path) -> Path:
    """A copy of the index at `source` (files hard-linked, the doc store copied) whose
    documents carry the synthetic `bucket` field."""
    from latesearch.indexing.docstore import DocStoreWriter

    target = common.WORK / "filtered" / "scifact"
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, copy_function=_link_or_copy)
    store = target / "docs.sqlite"
    data = store.read_bytes()
    store.unlink()  # break the hard link before writing
    store.write_bytes(data)
    DocStoreWriter(store).close()  # brings an older doc store to today's schema
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE docs SET metadata = json_object('bucket', (idx * 7919) % 1000)")
    return target


def _link_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def recall(index: Any, queries: list[str], spec: dict[str, Any]) -> float:
    found = total = 0
    for start in range(0, len(queries), 32):
        part = queries[start : start + 32]
        engine = index.search(part, k=10, filter=spec)
        exact = index.search(part, k=10, mode="exact", filter=spec)
        for got, want in zip(engine, exact, strict=True):
            want_ids = {h.doc_id for h in want}
            found += len(want_ids & {h.doc_id for h in got})
            total += len(want_ids)
    return round(found / max(total, 1), 4)


def latency(index: Any, texts: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    """Filtered and unfiltered engine, alternating per query after 2 warm-ups."""
    for text in texts[:2]:
        index.search(text, k=10, filter=spec)
        index.search(text, k=10)
    times: dict[str, list[float]] = {"filtered": [], "unfiltered": []}
    for n, text in enumerate(texts):
        order = ("filtered", "unfiltered") if n % 2 == 0 else ("unfiltered", "filtered")
        for which in order:
            started = time.perf_counter()
            index.search(text, k=10, filter=spec if which == "filtered" else None)
            times[which].append(1000 * (time.perf_counter() - started))
    out: dict[str, Any] = {}
    for which, values in times.items():
        ordered = sorted(values)
        out[which] = {"median": round(statistics.median(values), 2),
                      "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)}
    out["ratio_median"] = round(out["filtered"]["median"] / out["unfiltered"]["median"], 3)
    return out


def markdown(payload: dict[str, Any]) -> str:
    lines = [common.header("Filtered search (SciFact, synthetic metadata)", payload["machine"],
                           payload["model"]), "",
             f"{payload['documents']:,} documents, {payload['queries']} test queries; each "
             "document carries a synthetic `bucket` (0-999, uniform); the filter keeps "
             "`bucket < B`. Recall@10: the engine (k=10, defaults) against exhaustive MaxSim "
             "over the same subset. Latency: one query per call, encoding included, filtered "
             "and unfiltered alternating.", "",
             "| selectivity | documents | recall@10 | filtered ms median / p95 | "
             "unfiltered ms median / p95 | filtered / unfiltered |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for label, row in payload["rows"].items():
        lat = row["latency_ms"]
        lines.append(f"| {label} | {row['documents']:,} | {row['recall_at_10']:.3f} | "
                     f"{lat['filtered']['median']} / {lat['filtered']['p95']} | "
                     f"{lat['unfiltered']['median']} / {lat['unfiltered']['p95']} | "
                     f"{lat['ratio_median']}x |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
