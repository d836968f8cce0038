"""How wide the engine must search at k=10: where it loses the exhaustive top 10, and what
widening its parameters buys in overlap@10 and costs in search time.

For each model and collection, on the 2-bit index with the fp16 tier (`keep_full`: the
survivors are scored exactly, so every loss is a candidate-generation or centroid-interaction
loss) and the exhaustive MaxSim top 10 of every test query over the uncompressed index:

1. stages: at PLAID's k=10 setting (ncells 1, t_cs 0.5, ndocs 256), the share of the
   exhaustive top 10 still present after each stage (the candidates of each query token's
   `ncells` best centroids; the `ndocs` kept by the pruned centroid interaction; the
   ndocs / 4 kept by the full one);
2. sweep: overlap@10 and nDCG@10 of every setting in the grid, and its search time (one
   query per call, query encoding excluded, --threads threads, --latency-queries queries,
   the settings interleaved per query with today's faiss IVFPQ end-to-end path, whose
   search time divided by the setting's is reported).

    python benchmarks/engine_sweep.py [--models default colbert-format-trained]
        [--collections scifact vaswani] [--latency-queries 40] [--threads 2]

Uses the indexes of benchmarks/engine.py (built once with LATESEARCH_BENCH_BUILD=1).
Writes benchmarks/results/engine-sweep-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

MODELS = {"default": None, "colbert-format-trained": str(common.COLBERT_FORMAT_TRAINED / "final")}
# (ncells, t_cs, ndocs): PLAID's k=10 setting first, then wider searches one knob at a time
GRID = ((1, 0.5, 256), (1, 0.4, 256), (1, 0.5, 512), (1, 0.5, 768), (1, 0.5, 1024), (2, 0.5, 256),
        (2, 0.45, 512), (2, 0.45, 1024), (4, 0.45, 1024), (4, 0.4, 2048))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=common.REPO.parent / "shared" / "data")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--collections", nargs="+", default=list(common.COLLECTIONS))
    p.add_argument("--latency-queries", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=common.RESULTS)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    payload: dict[str, Any] = {"benchmark": "engine-sweep", "machine": common.machine_info(),
                               "grid": [list(g) for g in GRID], "models": {}}  # fmt: skip
    for model in args.models:
        colbert = common.load_model(MODELS[model])
        entry: dict[str, Any] = {"label": common.model_label(MODELS[model], colbert)}
        for name in args.collections:
            entry[name] = sweep(common.collection(name, args.data), colbert, args)
            print(model, name, entry[name]["stages"], flush=True)
        payload["models"][model] = entry
    common.write_results(args.out, "engine-sweep-cpu", payload, markdown(payload))


def sweep(coll: Any, colbert: Any, args: argparse.Namespace) -> dict[str, Any]:
    reference = common.colbert_index(coll, colbert)
    engine = common.engine_index(coll, reference, nbits=2, keep_full=True)
    sets = coll.eval_sets()
    queries = sets[0].queries
    exact = search_all(reference, queries, mode="exact")
    top10 = {q: list(r)[:10] for q, r in exact.items()}
    out: dict[str, Any] = {"queries": len(queries), "stages": stages(engine, queries, top10)}
    out["exact"] = effectiveness(exact, sets)
    rows = []
    for ncells, t_cs, ndocs in GRID:
        options = {"ncells": ncells, "centroid_score_threshold": t_cs, "ndocs": ndocs}
        run = search_all(engine, queries, mode="e2e", **options)
        rows.append({"params": options, "overlap@10": overlap(run, top10),
                     "nDCG@10": effectiveness(run, sets)})  # fmt: skip
        print(coll.name, rows[-1], flush=True)
    texts = list(queries.values())[: args.latency_queries]
    timed = latency([(reference, {"mode": "e2e"})]
                    + [(engine, {"mode": "e2e", **r["params"]}) for r in rows], texts)  # fmt: skip
    out["faiss_e2e_search_ms"] = timed[0]
    for row, ms in zip(rows, timed[1:], strict=True):
        row["search_ms"] = ms
        row["faiss_over_engine"] = timed[0]["median"] / ms["median"]
    out["grid"] = rows
    return out


def search_all(index: Any, queries: dict[str, str], **options: Any) -> dict[str, dict[str, float]]:
    qids, run = list(queries), {}
    for start in range(0, len(qids), 32):
        part = qids[start : start + 32]
        hits = index.search([queries[q] for q in part], k=10, **options)
        run.update({q: {h.doc_id: h.score for h in hs} for q, hs in zip(part, hits, strict=True)})
    return run


def stages(engine_index: Any, queries: dict[str, str], top10: dict[str, list[str]]) -> dict:
    """At PLAID's k=10 setting (the grid's first row), the mean share of the exhaustive
    top 10 each stage of the engine keeps."""
    from latesearch.search.engine import EngineParams
    from latesearch.search.timing import SearchTimings

    store, engine = engine_index.store, engine_index.searcher.engine
    ncells, t_cs, ndocs = GRID[0]
    params = EngineParams(ncells=ncells, centroid_score_threshold=t_cs, ndocs=ndocs)
    kept: dict[str, list[float]] = {"candidates": [], "pruned interaction": [],
                                    "full interaction": []}  # fmt: skip
    for qid, text in queries.items():
        want = set(store.doc_indices(top10[qid])[0].tolist())
        Q, mask = engine_index.model.encode_queries([text], return_mask=True)
        trace: dict[str, np.ndarray] = {}
        engine.shortlist(Q, mask, 10, params, SearchTimings(n_queries=1), trace=trace)
        for stage, docs in trace.items():
            kept[stage].append(len(want & set(docs.tolist())) / len(want))
    return {name: round(statistics.fmean(v), 4) for name, v in kept.items()}


def effectiveness(run: dict, sets: list[Any]) -> dict[str, float]:
    from latesearch.evaluation import evaluate_run

    return {s.name: round(evaluate_run({q: run[q] for q in s.queries if q in run}, s.qrels,
                                       "nDCG@10").aggregate["nDCG@10"], 4)
            for s in sets}  # fmt: skip


def overlap(run: dict, top10: dict[str, list[str]]) -> float:
    return round(statistics.fmean(len(set(list(run[q])[:10]) & set(ref)) / max(1, len(ref))
                                  for q, ref in top10.items()), 4)  # fmt: skip


def latency(methods: list[tuple[Any, dict]], texts: list[str]) -> list[dict[str, float]]:
    """Search ms (encoding excluded) per method, one query per call, interleaved."""
    for index, options in methods:
        for text in texts[:2]:
            index.search(text, k=10, **options)
    samples: list[list[float]] = [[] for _ in methods]
    for i, text in enumerate(texts):
        order = list(range(len(methods)))
        order = order[i % len(order) :] + order[: i % len(order)]
        for m in order:
            index, options = methods[m]
            started = time.perf_counter()
            index.search(text, k=10, **options)
            wall = time.perf_counter() - started
            samples[m].append(1000 * (wall - index.last_timings.encode))
    return [{"median": round(statistics.median(s), 2),
             "p95": round(float(np.percentile(s, 95)), 2)} for s in samples]  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    first = next(iter(payload["models"].values()))
    lines = [common.header("How wide the engine searches at k=10", payload["machine"],
                           first["label"]), ""]  # fmt: skip
    for model, entry in payload["models"].items():
        lines += [f"## {model}: {entry['label']}", ""]
        for name, result in entry.items():
            if name == "label":
                continue
            st = result["stages"]
            lines += [f"### {name} ({result['queries']} queries)", "",
                      "Share of the exhaustive top 10 kept at PLAID's k=10 setting "
                      "(1, 0.5, 256): candidates "
                      f"{st['candidates']:.3f}, after the pruned interaction "
                      f"{st['pruned interaction']:.3f}, after the full interaction "
                      f"{st['full interaction']:.3f}.", "",
                      f"faiss IVFPQ end to end: search {result['faiss_e2e_search_ms']['median']}"
                      " ms median.", "",
                      "| ncells | t_cs | ndocs | overlap@10 | nDCG@10 (exhaustive) | search ms "
                      "median / p95 | faiss / engine |",
                      "|---:|---:|---:|---:|---|---:|---:|"]  # fmt: skip
            for row in result["grid"]:
                prm, ms = row["params"], row["search_ms"]
                ndcg = ", ".join(f"{s} {v:.4f} ({result['exact'][s]:.4f})"
                                 for s, v in row["nDCG@10"].items())  # fmt: skip
                lines.append(f"| {prm['ncells']} | {prm['centroid_score_threshold']} | "
                             f"{prm['ndocs']} | {row['overlap@10']:.3f} | {ndcg} | "
                             f"{ms['median']:.1f} / {ms['p95']:.1f} | "
                             f"{row['faiss_over_engine']:.2f}x |")  # fmt: skip
            lines.append("")
    lines.append("Regenerate with: `python benchmarks/engine_sweep.py`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
