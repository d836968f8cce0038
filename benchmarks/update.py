"""What `Index.add` / `Index.delete` cost against rebuilding the index, and whether the
updated index answers as a fresh build of the same documents does.

One run, one machine: an index of all but the last `--n-add` documents (bm25/ and ann/) is
built; the last ones are added (`Index.add`) and, as the peer, an index of all documents is
built from scratch; then `--n-add` documents of the first part are deleted (`Index.delete`)
and, as the peer, the remaining documents are indexed from scratch. The queries are searched
on both sides in every mode: exact must agree exactly; e2e may differ where the centroids
(compressed) or the faiss index (uncompressed), kept from the base build on the updated
side, differ from the rebuilt index's.

    python benchmarks/update.py                                   # the demo collection
    python benchmarks/update.py --collection ../shared/data/scifact/corpus.jsonl \\
        --limit 1000 --queries ../shared/data/scifact/queries.jsonl

Writes benchmarks/results/update-<collection>-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEMO, RESULTS, demo_queries, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

MODES = ("exact", "rerank", "e2e")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collection", type=Path, default=DEMO / "collection.jsonl")
    p.add_argument("--queries", type=Path, default=None, help="default: the demo's and pydocs'")
    p.add_argument("--limit", type=int, default=None, help="first N documents only")
    p.add_argument("--max-queries", type=int, default=200)
    p.add_argument("--n-add", type=int, default=50, help="documents added, then deleted")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def agreement(ours: Any, theirs: Any, queries: list[str], k: int) -> dict[str, Any]:
    """Per mode: queries whose top-k ids are identical, and the mean top-k overlap."""
    out = {}
    for mode in MODES:
        same = overlap = 0
        for a, b in zip(ours.search(queries, k=k, mode=mode),
                        theirs.search(queries, k=k, mode=mode), strict=True):  # fmt: skip
            ids_a, ids_b = [h.doc_id for h in a], [h.doc_id for h in b]
            same += ids_a == ids_b
            overlap += len(set(ids_a) & set(ids_b)) / max(len(ids_b), 1)
        out[mode] = {"identical_top_k": same, "mean_overlap": round(overlap / len(queries), 4)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from latesearch import ColBERT, Index
    from latesearch.data import read_collection, read_queries

    args = parse_args(argv)
    docs = list(read_collection(args.collection))[: args.limit]
    queries = demo_queries() if args.queries is None else list(read_queries(args.queries).values())
    queries = queries[: args.max_queries]
    base, new = docs[: -args.n_add], docs[-args.n_add :]
    gone = {d.doc_id for d in docs[: args.n_add]}
    model = ColBERT.from_pretrained(device=args.device)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def build(name: str, items: list[Any]) -> Any:
            return Index.build(items, tmp / name, model, bm25=True, progress=False)

        index, t_base = timed(lambda: build("updated", base))
        _, t_add = timed(lambda: index.add(new, progress=False))
        rebuilt, t_rebuild = timed(lambda: build("rebuilt", docs))
        rows["add"] = {"documents": args.n_add, "update_s": round(t_add, 2),
                       "rebuild_s": round(t_rebuild, 2), "speedup": round(t_rebuild / t_add, 2),
                       "agreement": agreement(index, rebuilt, queries, args.k)}  # fmt: skip
        _, t_del = timed(lambda: index.delete(sorted(gone)))
        kept = [d for d in docs if d.doc_id not in gone]
        rebuilt, t_rebuild = timed(lambda: build("rebuilt-after-delete", kept))
        rows["delete"] = {"documents": len(gone), "update_s": round(t_del, 2),
                          "rebuild_s": round(t_rebuild, 2),
                          "speedup": round(t_rebuild / t_del, 2),
                          "agreement": agreement(index, rebuilt, queries, args.k)}  # fmt: skip
        codec = index.store.manifest.codec
        kind = f"compressed, {codec['nbits']}-bit residuals" if codec else "uncompressed"
        details = {"index_kind": kind, "embeddings": index.store.n_embeddings,
                   "base_build_s": round(t_base, 2)}  # fmt: skip
    info = machine_info()
    result = {"benchmark": "update", "machine": info, "collection": str(args.collection),
              "documents": len(docs), "queries": len(queries), "k": args.k, **details,
              "rows": rows}  # fmt: skip
    lines = [
        f"# Index updates against rebuilding ({describe(info)})", "",
        f"{len(docs)} documents of {args.collection.name} ({details['embeddings']:,} "
        f"embeddings, {details['index_kind']} index with bm25), the default model; {len(queries)} "
        f"queries, top-{args.k}. Add: the last {args.n_add} documents added to an index of "
        f"the others, against building all {len(docs)} from scratch. Delete: {len(gone)} "
        "documents removed, against building the rest from scratch. Same run, same machine. "
        "exact and rerank score every candidate exactly, so they must agree; e2e may differ, "
        "since the rebuilt index trains its own centroids (or faiss index), where the updated "
        "one keeps those of its first build.",
        "",
        "| update | documents | update s | rebuild s | rebuild / update | identical top-k, exact | rerank | e2e | e2e mean overlap |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, r in rows.items():
        a = r["agreement"]
        lines.append(
            f"| {name} | {r['documents']} | {r['update_s']} | {r['rebuild_s']} | "
            f"{r['speedup']}x | {a['exact']['identical_top_k']}/{len(queries)} | "
            f"{a['rerank']['identical_top_k']}/{len(queries)} | "
            f"{a['e2e']['identical_top_k']}/{len(queries)} | {a['e2e']['mean_overlap']} |"
        )
    device = "gpu" if info.get("gpu") else "cpu"
    label = "demo" if args.collection == DEMO / "collection.jsonl" else args.collection.parent.name
    write_results(args.out, f"update-{label}-{device}", result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
