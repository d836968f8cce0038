"""When to rebuild a compressed index: quality after growing it 2x by additions, against a
fresh build of the same documents.

For each collection, from the prebuilt uncompressed index of the default model (see
_common.colbert_index): its first half is compressed (`compress_index`, centroids trained on
that half), the second half is added with `Index.add` (encoded and coded with the half's
centroids), and, as the peer, the whole collection is compressed with centroids trained on
all of it. Both answer every test query with the engine (k=10 and k=100) and are compared
with exhaustive MaxSim over the uncompressed index: nDCG@10, R@100, overlap@10.

    python benchmarks/growth.py [--collections scifact vaswani]

Writes benchmarks/results/growth-cpu.json and .md.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    WORK,
    colbert_index,
    collection,
    header,
    load_model,
    parser,
    write_results,  # noqa: E402
)
from _machine import machine_info  # noqa: E402

METRICS = "nDCG@10 R@100"


def main() -> None:
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    from latesearch.data import read_collection

    model = load_model(args.model)
    rows = []
    for name in args.collections:
        coll = collection(name, args.data)
        reference = colbert_index(coll, model, progress=False)
        docs = list(read_collection(coll.corpus))
        rows.append(grow(name, coll, reference, docs, model))
        print(rows[-1], flush=True)
    payload = {"machine": machine_info(), "rows": rows}
    write_results(args.out, "growth-cpu", payload, markdown(payload))


def grow(name: str, coll: Any, reference: Any, docs: list[Any], model: Any) -> dict[str, Any]:
    """The grown index and the fresh one, each against exhaustive search."""
    from latesearch import Index
    from latesearch.indexing import compress_index, update_index

    folder = WORK / "growth" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    half = len(docs) // 2
    first = folder / "first-half-uncompressed"
    shutil.copytree(reference.folder, first, ignore=shutil.ignore_patterns("ann", "bm25"))
    update_index(first, delete=[d.doc_id for d in docs[half:]], progress=False)
    compress_index(first, folder / "grown", nbits=2, keep_full=False).close()
    shutil.rmtree(first)
    grown = Index.load(folder / "grown", model)
    started = time.perf_counter()
    grown.add([{"_id": d.doc_id, "title": d.title, "text": d.text} for d in docs[half:]],
              progress=False)  # fmt: skip
    add_seconds = time.perf_counter() - started
    fresh = compress_index(reference.folder, folder / "fresh", nbits=2, keep_full=False)
    fresh = Index.load(fresh.folder, model)
    sets = coll.eval_sets()
    exact = run(reference, sets[0].queries, 100, "exact")
    out: dict[str, Any] = {"collection": name, "docs": len(docs), "first_half": half,
                           "add_seconds": round(add_seconds, 1)}  # fmt: skip
    out["exhaustive"] = quality(exact, exact, sets)
    for label, index in (("grown", grown), ("fresh", fresh)):
        out[label] = quality(run(index, sets[0].queries, 10), exact, sets,
                             run(index, sets[0].queries, 100))  # fmt: skip
    return out


def run(index: Any, queries: dict[str, str], k: int, mode: str = "e2e") -> dict[str, Any]:
    qids = list(queries)
    hits = index.search([queries[q] for q in qids], k=k, mode=mode)
    return {q: {h.doc_id: h.score for h in row} for q, row in zip(qids, hits, strict=True)}


def quality(run10: dict, exact: dict, sets: list[Any], run100: dict | None = None) -> dict:
    """nDCG@10 (from the k=10 run), R@100 (from the k=100 run) per set; overlap@10."""
    from latesearch.evaluation import evaluate_run

    run100 = run100 or run10
    out = {}
    for s in sets:
        ndcg = evaluate_run({q: run10[q] for q in s.qrels if q in run10}, s.qrels, "nDCG@10")
        recall = evaluate_run({q: run100[q] for q in s.qrels if q in run100}, s.qrels, "R@100")
        out[s.name] = {"nDCG@10": round(ndcg.aggregate["nDCG@10"], 4),
                       "R@100": round(recall.aggregate["R@100"], 4)}  # fmt: skip
    overlaps = [len(set(_top(run10[q], 10)) & set(_top(exact[q], 10))) / 10 for q in run10]
    out["overlap@10"] = round(sum(overlaps) / len(overlaps), 4)
    return out


def _top(scores: dict[str, float], k: int) -> list[str]:
    return sorted(scores, key=lambda d: (-scores[d], d))[:k]


def markdown(payload: dict[str, Any]) -> str:
    lines = [header("Growing a compressed index 2x by additions, against a fresh build",
                    payload["machine"], "built-in default"),  # fmt: skip
             "Command: `python benchmarks/growth.py`", "",
             "| collection | set | exhaustive nDCG@10 / R@100 | grown | fresh | overlap@10 grown / "
             "fresh |", "|---|---|---|---|---|---|"]  # fmt: skip
    for row in payload["rows"]:
        for name, ref in row["exhaustive"].items():
            if name == "overlap@10":
                continue
            g, f = row["grown"][name], row["fresh"][name]
            lines.append(
                f"| {row['collection']} | {name} | {ref['nDCG@10']:.4f} / {ref['R@100']:.4f} | "
                f"{g['nDCG@10']:.4f} / {g['R@100']:.4f} | {f['nDCG@10']:.4f} / "
                f"{f['R@100']:.4f} | {row['grown']['overlap@10']:.3f} / "
                f"{row['fresh']['overlap@10']:.3f} |"
            )
    lines += ["", "Grown: the first half compressed with centroids of its own, the second half "
              "added with `Index.add`; fresh: all documents compressed with centroids trained "
              "on all of them. Engine at k=10 (nDCG@10, overlap) and k=100 (R@100)."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
