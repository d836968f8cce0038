"""Calibrated relevance on held-out queries, and the cost of explanations: the default
model's default index (compressed, 2 bits, fp16 vectors kept), mode "e2e", depth 100.

Two calibrations (`Index.calibrate`'s isotonic regression of relevance on the bounded
score), each tested on queries it was not fitted on:
- "shipped": the one the default model ships (latesearch/resources/default_model/
  calibration.json, fitted on the 108 pydocs dev questions over the demo collection),
  which every index of that model uses out of the box;
- "own": fitted on the collection's own held-out split, as `latesearch calibrate` gives a
  user: SciFact's training queries; Vaswani's odd-numbered queries.
Test queries: the demo's 20 (shipped only: "own" would be the same fit), SciFact's 300
test queries, Vaswani's even-numbered queries. On their top 100 hits: expected
calibration error (10 bins), a reliability table and plot, and precision / recall of
`min_relevance` cuts at 0.3, 0.5, 0.7 (recall: of every judged relevant document of the
test queries). Explanations: one query per call (test queries, then fit ones), k=10, with
and without `explain=True`, interleaved; the difference per hit.

SciFact's and Vaswani's indexes are compressed (`compress_index`, no encoding) from the
uncompressed fp16 indexes of benchmarks/pooling.py (.work/eval/pooling/NAME-FP-float32-
base), which must exist; the demo's is built when missing (a minute).

    python benchmarks/calibration.py [--sets demo scifact vaswani] [--latency-queries 100]
    python benchmarks/calibration.py --merge A.json B.json   # runs of other sets, as one

(--merge: the collections of several runs' JSON files in one result, each run's command
and load averages named; for collections measured in separate runs on a busy machine.)

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
                        help="collections (demo; scifact and vaswani need the pooling "
                        "benchmark's uncompressed indexes)")  # fmt: skip
    parser.add_argument("--fit-queries", type=int, default=None,
                        help="fit the own calibration on the first N held-out queries by id "
                        "(default: all; for a busy machine)")  # fmt: skip
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="combine these runs' JSON results instead of measuring")  # fmt: skip
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge, args.out)
    common.setup(args)
    colbert = common.load_model(args.model)
    payload: dict[str, Any] = {"benchmark": "calibration", "machine": common.machine_info(),
                               "model": common.model_label(args.model, colbert),
                               "load_average": os.getloadavg(), "collections": {}}  # fmt: skip
    from latesearch.indexing.components.calibration import shipped_calibration

    shipped = shipped_calibration()
    if shipped is None or shipped.model_fingerprint != colbert.fingerprint():
        raise SystemExit("the shipped calibration is not this model's (run scripts/"
                         "default_model/fit_calibration.py, or pass no --model)")  # fmt: skip
    payload["shipped"] = {**about(shipped), "fitted_on": shipped.fitted_on,
                          "command": shipped.command}  # fmt: skip
    for name in args.sets:
        coll = DEMO if name == "demo" else common.collection(name, args.data)
        index = compressed_index(coll, colbert)
        fit_queries, fit_qrels, test_queries, test_qrels = split(coll)
        if args.fit_queries:
            fit_queries = dict(sorted(fit_queries.items())[: args.fit_queries])
        scores, labels = labelled(index, test_queries, test_qrels)
        relevant = sum(sum(1 for r in judged.values() if r > 0) for judged in test_qrels.values())
        row: dict[str, Any] = {"test_queries": len(test_queries), "test_hits": int(labels.size),
                               "base_rate": float(labels.mean()),
                               "recall_at_100": float(labels.sum() / relevant),
                               "calibrations": {}}  # fmt: skip
        fits = {"shipped": shipped}
        if name != "demo":  # the demo's own split is the shipped fit's
            fits["own"] = fit(index, fit_queries, fit_qrels)
        for which, fitted in fits.items():
            row["calibrations"][which] = {**evaluate(fitted, scores, labels, relevant,
                                                     len(test_queries)),
                                          "fitted_on": about(fitted)}  # fmt: skip
        sample = [*test_queries.values(), *fit_queries.values()][: args.latency_queries]
        row["explain_cost"] = explain_cost(index, sample)
        payload["collections"][name] = row
        print(name, {w: (c["ece"], c["cuts"]) for w, c in row["calibrations"].items()},
              row["explain_cost"], flush=True)  # fmt: skip
    payload["load_average_after"] = os.getloadavg()
    payload["runs"] = [run_of(payload, common.command())]
    args.out.mkdir(parents=True, exist_ok=True)
    plot(payload, args.out / "calibration-reliability.png")
    common.write_results(args.out, "calibration-cpu", payload, markdown(payload))


def run_of(payload: dict[str, Any], command: str) -> dict[str, Any]:
    return {"sets": list(payload["collections"]), "command": command,
            "load_average": payload["load_average"],
            "load_average_after": payload["load_average_after"]}  # fmt: skip


def merge(paths: list[Path], out: Path) -> None:
    """One result of several runs' JSON files (a run without `runs` is named by its sets)."""
    import json

    payloads = [json.loads(path.read_text()) for path in paths]
    merged = {**payloads[0], "collections": {}, "runs": []}
    for payload in payloads:
        if payload["model"] != merged["model"] or payload["shipped"] != merged["shipped"]:
            raise SystemExit("the runs measured different models or shipped calibrations")
        merged["collections"].update(payload["collections"])
        timed = max(c["explain_cost"]["queries"] for c in payload["collections"].values())
        sets = " ".join(payload["collections"])
        command = f"python benchmarks/calibration.py --sets {sets} --latency-queries {timed}"
        merged["runs"] += payload.get("runs") or [run_of(payload, command)]
    merged["load_average"] = merged["runs"][0]["load_average"]
    merged["load_average_after"] = merged["runs"][-1]["load_average_after"]
    out.mkdir(parents=True, exist_ok=True)
    plot(merged, out / "calibration-reliability.png")
    common.write_results(out, "calibration-cpu", merged, markdown(merged))


def about(fitted: Any) -> dict[str, Any]:
    return {"queries": fitted.queries, "hits": fitted.pairs, "relevant": fitted.positives,
            "breakpoints": len(fitted.scores)}  # fmt: skip


def compressed_index(coll: common.Collection, colbert: Any) -> Any:
    """The default index (compressed, 2 bits, fp16 vectors kept) of `coll` under
    .work/eval/indexes: SciFact's and Vaswani's compressed once from the pooling
    benchmark's uncompressed fp16 index (no encoding), the demo's built once."""
    from latesearch import Index
    from latesearch.indexing import IndexConfig, compress_index

    fingerprint = colbert.fingerprint()[:12]
    folder = common.WORK / "indexes" / f"{coll.name}-compressed-{fingerprint}"
    if (folder / "manifest.json").is_file():
        return Index.load(folder, colbert)
    if coll.name == "demo":
        print(f"building {folder} (once)...", flush=True)
        return Index.build(coll.corpus, folder, colbert, progress=True)
    base = common.WORK / "pooling" / f"{coll.name}-{fingerprint}-float32-base"
    if not (base / "manifest.json").is_file():
        raise SystemExit(f"{base} is missing: run benchmarks/pooling.py for {coll.name} first")
    default = IndexConfig().codec  # what Index.build writes
    print(f"compressing {base} into {folder} (once)...", flush=True)
    compress_index(base, folder, nbits=default.nbits, keep_full=default.keep_full,
                   progress=True)  # fmt: skip
    return Index.load(folder, colbert)


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
    else:  # Vaswani: fitted on the odd-numbered queries, tested on the even-numbered ones
        judged = read_qrels(coll.qrels)
        train = {q: r for q, r in judged.items() if int(q) % 2 == 1}
        test = {q: r for q, r in judged.items() if int(q) % 2 == 0}
    pick = lambda qrels: {q: queries[q] for q in qrels if q in queries}  # noqa: E731
    return pick(train), train, pick(test), test


def fit(index: Any, queries: dict, qrels: dict) -> Any:
    """`Index.calibrate`'s fit, without writing it into the benchmark's index."""
    return index.calibrate(queries, qrels, mode="e2e", depth=DEPTH, keep=False)


def labelled(index: Any, queries: dict, qrels: dict) -> tuple[np.ndarray, np.ndarray]:
    ids = list(queries)
    results = index.search([queries[q] for q in ids], k=DEPTH, mode="e2e")
    pairs = [(h.bounded_score, qrels[q].get(h.doc_id, 0) > 0)
             for q, hits in zip(ids, results, strict=True) for h in hits]  # fmt: skip
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)


def evaluate(fitted: Any, scores: np.ndarray, labels: np.ndarray, relevant: int,
             n_queries: int) -> dict[str, Any]:  # fmt: skip
    """ECE, reliability and cuts of `fitted` on the test hits' bounded `scores` and 0/1
    `labels` (`relevant`: every judged relevant document of the `n_queries` queries)."""
    from latesearch.indexing.components.calibration import expected_calibration_error

    p = fitted.relevance(scores)
    which = np.minimum((p * BINS).astype(int), BINS - 1)
    reliability = [{"bin": f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}", "hits": int((which == b).sum()),
                    "predicted": float(p[which == b].mean()) if (which == b).any() else None,
                    "observed": float(labels[which == b].mean()) if (which == b).any() else None}
                   for b in range(BINS)]  # fmt: skip
    cuts = {}
    for cut in CUTS:
        kept = p >= cut
        cuts[str(cut)] = {"kept_per_query": float(kept.sum() / n_queries),
                          "precision": float(labels[kept].mean()) if kept.any() else None,
                          "recall": float(labels[kept].sum() / relevant)}  # fmt: skip
    return {"ece": expected_calibration_error(p, labels, BINS),
            "mean_predicted": float(p.mean()), "reliability": reliability,
            "cuts": cuts}  # fmt: skip


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

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, row in payload["collections"].items():
        for which, cal in row["calibrations"].items():
            points = [(r["predicted"], r["observed"]) for r in cal["reliability"] if r["hits"]]
            ax.plot(*zip(*points, strict=True), marker="o" if which == "shipped" else "s",
                    linestyle="-" if which == "shipped" else ":",
                    label=f"{name}, {which} (ECE {cal['ece']:.3f})")  # fmt: skip
    ax.set_xlabel("predicted probability of relevance")
    ax.set_ylabel("observed fraction relevant")
    ax.set_title("Held-out queries, e2e top 100: shipped vs own calibration", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=120)


def markdown(payload: dict[str, Any]) -> str:
    shipped, runs = payload["shipped"], payload.get("runs") or [run_of(payload, "")]
    loads = []
    for run in runs:
        start, end = (", ".join(f"{x:.2f}" for x in run[key])
                      for key in ("load_average", "load_average_after"))  # fmt: skip
        loads.append(f"{', '.join(run['sets'])}: load average {start} at the start, {end} at "
                     f"the end" + (f" (`{run['command']}`)" if run["command"] else ""))  # fmt: skip
    lines = [common.header("Calibrated relevance on held-out queries; the cost of explain",
                           payload["machine"], payload["model"],
                           "Runs: " + "; ".join(loads) + "."), ""]  # fmt: skip
    lines.append(
        "Mode e2e on the default index (compressed, 2 bits, fp16 vectors kept), top 100 "
        "hits per test query. **shipped**: the calibration the default model ships, fitted "
        f"on {shipped['fitted_on']} ({shipped['hits']} hits, {shipped['relevant']} "
        "relevant); **own**: fitted on the collection's held-out split, as `latesearch "
        "calibrate` does (SciFact: training queries; Vaswani: odd-numbered queries). Tested "
        "on queries neither was fitted on: the demo's 20, SciFact's 300 test queries, "
        "Vaswani's even-numbered queries. ECE: 10 equal-width bins. Plot: "
        "[calibration-reliability.png](calibration-reliability.png).")  # fmt: skip
    lines += ["", "| collection | calibration | fitted on (queries / hits / relevant) | ECE | "
              "mean predicted | observed | min_relevance 0.3: kept/q, P, R | 0.5 | 0.7 |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in payload["collections"].items():
        for which, cal in row["calibrations"].items():
            f = cal["fitted_on"]
            cuts = [f"{c['kept_per_query']:.2f}, "
                    + ("-" if c["precision"] is None else f"{c['precision']:.3f}")
                    + f", {c['recall']:.3f}" for c in cal["cuts"].values()]  # fmt: skip
            lines.append(f"| {name} ({row['test_queries']} q) | {which} | {f['queries']} / "
                         f"{f['hits']} / {f['relevant']} | {cal['ece']:.4f} | "
                         f"{cal['mean_predicted']:.4f} | {row['base_rate']:.4f} | "
                         + " | ".join(cuts) + " |")  # fmt: skip
    for name, row in payload["collections"].items():
        cost = row["explain_cost"]
        lines += ["", f"### {name}: {row['test_queries']} test queries, {row['test_hits']} "
                  f"hits, {row['base_rate']:.4f} of them relevant; recall of the top 100 "
                  f"{row['recall_at_100']:.3f}", ""]  # fmt: skip
        for which, cal in row["calibrations"].items():
            lines += [f"Reliability, {which}:", "",
                      "| predicted | hits | mean predicted | observed |",
                      "|---|---|---|---|"]  # fmt: skip
            for r in cal["reliability"]:
                if r["hits"]:
                    lines.append(f"| {r['bin']} | {r['hits']} | {r['predicted']:.3f} | "
                                 f"{r['observed']:.3f} |")  # fmt: skip
            lines.append("")
        lines.append(
            f"explain=True, k=10, {cost['queries']} queries one per call: "
            f"{cost['ms_per_query']:.1f} ms -> {cost['ms_per_query_explained']:.1f} ms "
            f"median per query ({cost['ratio']:.2f}x); the explanations alone "
            f"{cost['ms_per_hit']:.2f} ms per hit (median)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
