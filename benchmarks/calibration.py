"""Calibrated relevance on held-out queries, and the cost of explanations: the default
model's compressed index (2 bits, fp16 tier), mode "e2e", depth 100.

The calibration (`Index.calibrate`'s isotonic regression of relevance on the bounded
score) is fitted on queries it is then not tested on: on the demo collection (409 Python
docstrings), the default model's 108 pydocs dev questions, tested on the demo's 20
queries; on SciFact, its training queries, tested on its 300 test queries; on Vaswani,
its odd-numbered queries, tested on the even-numbered ones. On the test queries' top 100
hits: expected calibration error (10 bins), a reliability table and plot, and precision /
recall of `min_relevance` cuts at 0.3, 0.5, 0.7 (recall: of every judged relevant
document of the test queries). Explanations: one query per call (test queries, then fit
ones), k=10, with and without `explain=True`, interleaved; the difference per hit.

    python benchmarks/calibration.py [--sets demo scifact vaswani] [--latency-queries 100]

Writes benchmarks/results/calibration-cpu.json, .md and calibration-reliability.png.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

DEPTH, CUTS, BINS = 100, (0.3, 0.5, 0.7), 10
SETS = ("demo", "scifact", "vaswani")
DEMO = common.Collection("demo", common.DEMO / "collection.jsonl", common.DEMO / "queries.tsv",
                         common.DEMO / "qrels.txt")  # fmt: skip


def main() -> None:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["demo"], choices=SETS,
                        help="collections (demo; scifact and vaswani take hours to index "
                        "on a shared 2-core CPU)")  # fmt: skip
    args = parser.parse_args()
    common.setup(args)
    colbert = common.load_model(args.model)
    payload: dict[str, Any] = {"benchmark": "calibration", "machine": common.machine_info(),
                               "model": common.model_label(args.model, colbert),
                               "load_average": os.getloadavg(), "collections": {}}  # fmt: skip
    for name in args.sets:
        coll = DEMO if name == "demo" else common.collection(name, args.data)
        index = compressed_index(coll, colbert)
        fit_queries, fit_qrels, test_queries, test_qrels = split(coll)
        fitted = fit(index, fit_queries, fit_qrels)
        row = evaluate(index, fitted, test_queries, test_qrels)
        row["fitted_on"] = {
            "queries": fitted.queries,
            "hits": fitted.pairs,
            "relevant": fitted.positives,
            "breakpoints": len(fitted.scores),
        }
        sample = [*test_queries.values(), *fit_queries.values()][: args.latency_queries]
        row["explain_cost"] = explain_cost(index, sample)
        payload["collections"][name] = row
        print(name, row["ece"], row["cuts"], row["explain_cost"], flush=True)
    payload["load_average_after"] = os.getloadavg()
    plot(payload, args.out / "calibration-reliability.png")
    common.write_results(args.out, "calibration-cpu", payload, markdown(payload))


def compressed_index(coll: common.Collection, colbert: Any) -> Any:
    """The default index (compressed, fp16 tier) of `coll`, built once under .work/eval."""
    from latesearch import Index

    folder = common.WORK / "indexes" / f"{coll.name}-compressed-{colbert.fingerprint()[:12]}"
    if (folder / "manifest.json").is_file():
        return Index.load(folder, colbert)
    print(f"building {folder} (once)...", flush=True)
    return Index.build(coll.corpus, folder, colbert, progress=True)


def split(coll: common.Collection) -> tuple[dict, dict, dict, dict]:
    """(fit queries, fit qrels, test queries, test qrels), disjoint."""
    from latesearch.data import read_qrels, read_queries

    if coll.name == "demo":  # the pydocs dev questions: qid, question, relevant ids
        rows = [line.split("\t") for line in common.PYDOCS.read_text().splitlines()
                if line.strip() and not line.startswith("#")]  # fmt: skip
        fit_queries = {r[0]: r[1] for r in rows}
        fit_qrels = {r[0]: dict.fromkeys(r[2].strip().split(","), 1) for r in rows}
        return fit_queries, fit_qrels, read_queries(coll.queries), read_qrels(coll.qrels)
    queries = read_queries(coll.queries if coll.name != "scifact"
                           else coll.queries / "queries.jsonl")  # fmt: skip
    if coll.name == "scifact":
        train, test = read_qrels(coll.train_qrels), read_qrels(coll.queries / "qrels/test.tsv")
    else:
        judged = read_qrels(coll.qrels)
        ids = sorted(judged, key=lambda q: int(q) if q.isdigit() else q)
        train = {q: judged[q] for q in ids[0::2]}
        test = {q: judged[q] for q in ids[1::2]}
    pick = lambda qrels: {q: queries[q] for q in qrels if q in queries}  # noqa: E731
    return pick(train), train, pick(test), test


def fit(index: Any, queries: dict, qrels: dict) -> Any:
    """`Index.calibrate`'s fit, without writing it into the benchmark's index."""
    from latesearch.indexing.components.calibration import Calibration

    scores, labels = labelled(index, queries, qrels)
    return Calibration.fit(scores, labels, mode="e2e", depth=DEPTH, queries=len(queries))


def labelled(index: Any, queries: dict, qrels: dict) -> tuple[np.ndarray, np.ndarray]:
    ids = list(queries)
    results = index.search([queries[q] for q in ids], k=DEPTH, mode="e2e")
    pairs = [(h.bounded_score, qrels[q].get(h.doc_id, 0) > 0)
             for q, hits in zip(ids, results, strict=True) for h in hits]  # fmt: skip
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)


def evaluate(index: Any, fitted: Any, queries: dict, qrels: dict) -> dict[str, Any]:
    from latesearch.indexing.components.calibration import expected_calibration_error

    scores, labels = labelled(index, queries, qrels)
    p = fitted.relevance(scores)
    which = np.minimum((p * BINS).astype(int), BINS - 1)
    reliability = [{"bin": f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}", "hits": int((which == b).sum()),
                    "predicted": float(p[which == b].mean()) if (which == b).any() else None,
                    "observed": float(labels[which == b].mean()) if (which == b).any() else None}
                   for b in range(BINS)]  # fmt: skip
    relevant = sum(sum(1 for r in judged.values() if r > 0) for judged in qrels.values())
    cuts = {}
    for cut in CUTS:
        kept = p >= cut
        cuts[str(cut)] = {"kept_per_query": float(kept.sum() / len(queries)),
                          "precision": float(labels[kept].mean()) if kept.any() else None,
                          "recall": float(labels[kept].sum() / relevant)}  # fmt: skip
    return {"test_queries": len(queries), "test_hits": int(labels.size),
            "ece": expected_calibration_error(p, labels, BINS),
            "base_rate": float(labels.mean()),
            "reliability": reliability, "cuts": cuts,
            "recall_at_100": float(labels.sum() / relevant)}  # fmt: skip


def explain_cost(index: Any, texts: list[str], k: int = 10) -> dict[str, float]:
    """Median ms per query of k=10 searches with and without explanations, interleaved,
    and of the explanations alone (`explain_documents` of the hits, the query's encoding
    given as the search passes it)."""
    from latesearch.search.explain import explain_documents

    plain, explained, alone = [], [], []
    for text in texts[:2]:  # warm-up
        index.search(text, k=k, explain=True)
    for text in texts:
        for explain, times in ((False, plain), (True, explained)):
            started = time.perf_counter()
            hits = index.search(text, k=k, explain=explain)
            times.append(1000 * (time.perf_counter() - started))
        encoded = index.model.encode_queries([text], return_mask=True)
        docs = index.store.doc_indices([h.doc_id for h in hits])[0]
        started = time.perf_counter()
        explain_documents(index.store, index.model, text, docs, encoded=encoded)
        alone.append(1000 * (time.perf_counter() - started) / max(len(hits), 1))
    a, b = float(np.median(plain)), float(np.median(explained))
    return {"queries": len(texts), "ms_per_query": a, "ms_per_query_explained": b,
            "ratio": b / a, "ms_per_hit": float(np.median(alone))}  # fmt: skip


def plot(payload: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, row in payload["collections"].items():
        points = [(r["predicted"], r["observed"]) for r in row["reliability"] if r["hits"]]
        ax.plot(*zip(*points, strict=True), marker="o", label=f"{name} (ECE {row['ece']:.3f})")
    ax.set_xlabel("predicted probability of relevance")
    ax.set_ylabel("observed fraction relevant")
    ax.set_title("Calibration on held-out queries (e2e, top 100)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=120)


def markdown(payload: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in payload["load_average"])
    lines = [common.header("Calibrated relevance on held-out queries; the cost of explain",
                           payload["machine"], payload["model"],
                           f"Load average at the start: {load}."), ""]  # fmt: skip
    lines.append("Mode e2e on the default compressed index, top 100 hits per query; fitted "
                 "on queries the test does not use (demo: the 108 pydocs dev questions, "
                 "tested on the demo's 20 queries; see the script). ECE: 10 bins. Plot: "
                 "[calibration-reliability.png](calibration-reliability.png).")  # fmt: skip
    for name, row in payload["collections"].items():
        fit_on, cost = row["fitted_on"], row["explain_cost"]
        lines += [
            "",
            f"### {name}: fitted on {fit_on['queries']} queries ({fit_on['hits']} "
            f"hits, {fit_on['relevant']} relevant), tested on {row['test_queries']}",
            "",
            f"ECE {row['ece']:.4f}; {row['base_rate']:.4f} of the hits relevant; recall of the "
            f"top 100: {row['recall_at_100']:.3f}.",
            "",
            "| min_relevance | hits kept per query | precision | recall |",
            "|---|---|---|---|",
        ]
        for cut, c in row["cuts"].items():
            precision = "-" if c["precision"] is None else f"{c['precision']:.3f}"
            lines.append(f"| {cut} | {c['kept_per_query']:.2f} | {precision} | {c['recall']:.3f} |")
        lines += ["", "| predicted | hits | mean predicted | observed |", "|---|---|---|---|"]
        for r in row["reliability"]:
            if r["hits"]:
                lines.append(
                    f"| {r['bin']} | {r['hits']} | {r['predicted']:.3f} | {r['observed']:.3f} |"
                )
        lines += [
            "",
            f"explain=True, k=10, {cost['queries']} queries one per call: "
            f"{cost['ms_per_query']:.1f} ms -> {cost['ms_per_query_explained']:.1f} ms "
            f"median per query ({cost['ratio']:.2f}x); the explanations alone "
            f"{cost['ms_per_hit']:.2f} ms per hit (median).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
