"""Stage 5 of the engine from lookup tables against decompress-and-multiply, on CPU.

    python benchmarks/lut_scoring.py [--data ../shared/data] [--docs 2000] \
        [--queries 100] [--threads 1 2] [--cache /tmp/latesearch-lut] [--out benchmarks/results]

A 2-bit index without the fp16 tier of the first `--docs` SciFact documents (all with 0),
built with the default model once and reused from `--cache`. Each test query is encoded
once; then, at k=10 and k=100 (the defaults of `EngineParams.for_k`), the engine searches
it with `lookup_tables` True ("lut") and False ("decompress"), interleaved query by query
(the order alternating per query) after 2 warm-up queries, at each thread count. Measured
per query: stage 5 (the "gather" and "score" timings: reading the survivors and scoring
them) and the whole engine search (stages 1-5 and top-k; query encoding, the same for
both, is reported apart), median and p95; the load average before and after; whether both
return the same ranking, or the same documents (an order differing only between documents
whose scores tie to float rounding), and their largest score difference at any rank.

Writes benchmarks/results/lut-scoring-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, collection, command, load_model, model_label  # noqa: E402
from _common import write_results as _write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

STEM = "lut-scoring-cpu"
METHODS = ("decompress", "lut")
KS = (10, 100)


def main() -> None:
    args = parse_args()
    import torch

    torch.manual_seed(0)
    colbert = load_model(None)
    index = cached_index(args, colbert)
    coll = collection("scifact", args.data)
    texts = list(coll.eval_sets()[0].queries.values())[: args.queries]
    started = time.perf_counter()
    encoded = [index.model.encode_queries([t], return_mask=True) for t in texts]
    encode_ms = 1000 * (time.perf_counter() - started) / len(texts)
    payload: dict[str, Any] = {
        "benchmark": "lut_scoring",
        "command": command(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "model": model_label(None, colbert),
        "index": {
            "folder": str(index.folder),
            "n_docs": len(index),
            "n_embeddings": index.store.n_embeddings,
            "n_centroids": index.store.codec.n_centroids,
            "nbits": index.store.codec.nbits,
            "keep_full": index.store.vectors.has_full,
        },
        "queries": len(texts),
        "encode_ms_mean": round(encode_ms, 2),
        "runs": {},
    }
    for threads in args.threads:
        torch.set_num_threads(threads)
        for k in KS:
            print(f"== {threads} thread(s), k={k}", flush=True)
            payload["runs"][f"{threads}-{k}"] = measure(index, encoded, k, threads)
            _write_results(args.out, STEM, payload, markdown(payload))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--docs", type=int, default=2000, help="first SciFact documents (0: all)")
    p.add_argument("--queries", type=int, default=100, help="test queries timed (100)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cache", type=Path, default=Path("/tmp/latesearch-lut"),
                   help="where the index is built once and reused")  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    return p.parse_args()


def cached_index(args: argparse.Namespace, colbert: Any):
    """The 2-bit index without fp16 vectors of the first `--docs` documents, built once."""
    from latesearch import Index

    name = f"scifact-{args.docs or 'all'}-{colbert.fingerprint()[:12]}-nbits2"
    folder = args.cache / name
    if (folder / "manifest.json").is_file():
        return Index.load(folder, colbert)
    args.cache.mkdir(parents=True, exist_ok=True)
    corpus = args.data / "scifact" / "corpus.jsonl"
    if args.docs:
        lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)[: args.docs]
        corpus = args.cache / f"scifact-{args.docs}.jsonl"
        corpus.write_text("".join(lines), encoding="utf-8")
    print(f"building {folder} (once)...", flush=True)
    return Index.build(corpus, folder, colbert, nbits=2, keep_full=False, progress=True)


def measure(index: Any, encoded: list, k: int, threads: int) -> dict[str, Any]:
    """Both methods on every query, interleaved, after 2 warm-up queries."""
    from latesearch.search.engine import EngineParams
    from latesearch.search.timing import SearchTimings

    engine = index.searcher.engine
    base = EngineParams.for_k(k, query_augmentation=index.store.colbert_config.query_augmentation)
    params = {m: dataclasses.replace(base, lookup_tables=m == "lut") for m in METHODS}
    times: dict[str, dict[str, list[float]]] = {m: {"stage5": [], "search": []} for m in METHODS}
    same_docs, near_ties, score_diff = 0, 0, 0.0
    load_before = os.getloadavg()
    for i, (Q, mask) in enumerate([*encoded[:2], *encoded]):
        ranked = {}
        for method in METHODS if i % 2 == 0 else METHODS[::-1]:
            timings = SearchTimings()
            started = time.perf_counter()
            ranked[method] = engine.search(Q, mask, k, params[method], timings)[0]
            elapsed = time.perf_counter() - started
            if i >= 2:
                times[method]["search"].append(1000 * elapsed)
                times[method]["stage5"].append(1000 * (timings.gather + timings.score))
        if i >= 2:
            (lut_scores, lut_docs), (old_scores, old_docs) = ranked["lut"], ranked["decompress"]
            same_docs += bool((lut_docs == old_docs).all())
            near_ties += set(lut_docs.tolist()) == set(old_docs.tolist())
            score_diff = max(score_diff, float(abs(lut_scores - old_scores).max()))
    return {
        "k": k,
        "threads": threads,
        "params": dataclasses.asdict(base),
        "ms": {m: {part: summary(v) for part, v in parts.items()} for m, parts in times.items()},
        "same_top_k": f"{same_docs}/{len(encoded)}",
        # the same documents, any order swapped only between scores max_score_difference apart
        "same_documents": f"{near_ties}/{len(encoded)}",
        "max_score_difference": score_diff,
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
    }


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 2), "p95": round(p95, 2),
            "mean": round(statistics.fmean(ordered), 2)}  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    idx = payload["index"]
    lines = [
        "# Engine stage 5: lookup tables vs decompression (CPU)",
        "",
        f"Machine: {describe(payload['machine'])}. Model: {payload['model']}.",
        f"Index: first {idx['n_docs']} SciFact documents, {idx['n_embeddings']} tokens, "
        f"{idx['n_centroids']} centroids, {idx['nbits']} bits, fp16 tier: {idx['keep_full']}.",
        f"{payload['queries']} test queries, each searched by both methods in turn (order "
        "alternating), after 2 warm-ups. Stage 5: reading and scoring the survivors; search: "
        "engine stages 1-5 and top-k, without query encoding "
        f"(mean {payload['encode_ms_mean']} ms per query). Date: "
        f"{payload['date']}.",
        "",
        "| threads | k | stage 5 decompress (median / p95 ms) | stage 5 lut | search decompress "
        "| search lut | same ranking / documents | max score diff | load avg before / after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in payload["runs"].values():
        ms = run["ms"]
        cell = {(m, part): f"{ms[m][part]['median']:.2f} / {ms[m][part]['p95']:.2f}"
                for m in METHODS for part in ("stage5", "search")}  # fmt: skip
        before, after = run["load_average_before_after"]
        lines.append(
            f"| {run['threads']} | {run['k']} | {cell['decompress', 'stage5']} | "
            f"{cell['lut', 'stage5']} | {cell['decompress', 'search']} | {cell['lut', 'search']} "
            f"| {run['same_top_k']} / {run.get('same_documents', '-')} | "
            f"{run['max_score_difference']:.1e} | "
            f"{before[0]:.1f} / {after[0]:.1f} |"
        )
    lines += ["", f"Regenerate with: `{payload['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
