"""The compressed index and its search engine on CPU: size, quality and latency.

    python benchmarks/engine.py [--data ../shared/data] \
        [--models default colbert-format-trained] [--latency-queries 100] \
        [--out benchmarks/results]

For each model and collection (SciFact, Vaswani) the prebuilt uncompressed fp16 index
(.work/eval/indexes/<name>-<fingerprint[:12]>, with bm25/ and ann/) is copied compressed
with `compress_index` into .work/eval/engine/<name>-<fp12>-nbits{1,2,4}[-full] (reused when
present and made from the same source; the -full copy reuses the codec of the plain one of
the same nbits, so the two differ only by the kept fp16 vectors). Measured:

- bytes per token: the index folder less docs.sqlite, bm25/ and ann/, over n_embeddings
  (bm25/ and ann/ reported apart), for the uncompressed reference too;
- quality on every test query: the engine (mode="e2e" on a compressed index, defaults of
  `EngineParams.for_k`) at k=10 (nDCG@10, overlap@10 with the exhaustive top-10) and at
  k=100 (R@100), and the faiss IVFPQ e2e of the uncompressed index likewise, against
  exhaustive MaxSim (mode="exact" on the uncompressed index), on SciFact test,
  SciFact-novel and Vaswani, each difference with the p-value of a paired randomization
  test over the queries;
- CPU latency at k=10, one query per call: the engine on nbits=2 (with and without
  keep_full) against the faiss e2e, interleaved query by query (call order rotated per
  query) after 2 warm-ups, at 1 and 2 threads (torch and faiss): median / p95 of the whole
  call, of query encoding and of the rest ("search"); mean per-stage times.

Writes benchmarks/results/engine-cpu.json and .md; results of models not run this time are
kept from the previous file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    COLBERT_FORMAT,
    COLBERT_FORMAT_TRAINED,
    REPO,
    RESULTS,
    WORK,
    colbert_index,
    collection,
    load_model,
    model_label,
)
from _common import write_results as _write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

MODELS = {"default": None, "colbert-format": str(COLBERT_FORMAT),
          "colbert-format-trained": str(COLBERT_FORMAT_TRAINED / "final")}  # fmt: skip
COLLECTIONS = ("scifact", "vaswani")
VARIANTS = (
    ("nbits1", 1, False),
    ("nbits2", 2, False),
    ("nbits4", 4, False),
    ("nbits2-full", 2, True),
)
EXTRA_FULL = (("nbits1-full", 1, True), ("nbits4-full", 4, True))
LATENCY_VARIANTS = ("nbits2", "nbits2-full")
METRICS = "nDCG@10 R@100"
STAGES = ("encode", "candidates", "interaction", "gather", "score")
OPTIONAL = ("bm25", "ann")
STEM = "engine-cpu"


def main() -> None:
    args = parse_args()
    import torch

    torch.manual_seed(0)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    payload = _previous(args.out)
    if args.markdown_only:
        _write_results(args.out, STEM, payload, markdown(payload))
        return
    payload.update(benchmark="engine", machine=machine_info())
    for name in args.models:
        colbert = load_model(MODELS[name])
        run = payload["runs"].setdefault(name, {"collections": {}})
        run["model"] = model_label(MODELS[name], colbert)
        run["machine"] = payload["machine"]  # models may be measured on different machines
        for coll in args.collections:
            print(f"== {name} / {coll}", flush=True)
            result = bench_collection(coll, colbert, args)
            result["command"] = command
            result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
            run["collections"][coll] = result
            _write_results(args.out, STEM, payload, markdown(payload))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--models", nargs="+", default=["default", "colbert-format-trained"],
                   choices=list(MODELS))
    p.add_argument("--collections", nargs="+", default=list(COLLECTIONS), choices=COLLECTIONS)
    p.add_argument(
        "--latency-queries",
        type=int,
        default=100,
        help="queries timed one at a time per method (100)",
    )
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="thread counts of the latency runs (1 2)",
    )
    p.add_argument(
        "--extra-full", action="store_true", help="also compress nbits 1 and 4 with keep_full"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the .json and stop"
    )
    return p.parse_args()


def _previous(out: Path) -> dict[str, Any]:
    """The previous results (a model's collections are kept unless rerun), or an empty one."""
    path = out / f"{STEM}.json"
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        return {**previous, "runs": previous.get("runs", {})}
    return {"runs": {}}


# ---------------------------------------------------------------------- one collection
def bench_collection(name: str, colbert: Any, args: argparse.Namespace) -> dict[str, Any]:
    from latesearch import Index

    coll = collection(name, args.data)
    sets = coll.eval_sets()
    reference = colbert_index(coll, colbert)  # built once where missing
    source = reference.folder
    variants = VARIANTS + (EXTRA_FULL if args.extra_full else ())
    indexes = {label: compressed(source, label, nbits, full) for label, nbits, full in variants}
    loaded = {label: Index.load(info["folder"], colbert) for label, info in indexes.items()}
    load_before = os.getloadavg()
    quality = measure_quality(reference, loaded, sets)
    texts = list(sets[0].queries.values())[: args.latency_queries]
    methods = {"faiss-e2e": (reference, {"mode": "e2e"})}
    methods.update({f"engine-{v}": (loaded[v], {"mode": "e2e"}) for v in LATENCY_VARIANTS})
    latency = {str(t): measure_latency(methods, texts, t) for t in args.threads}
    return {
        "reference": {
            "folder": str(source),
            "n_docs": len(reference),
            "n_embeddings": reference.store.n_embeddings,
            **sizes(source, reference.store.n_embeddings),
        },
        "indexes": indexes,
        "eval_sets": {s.name: len(s.queries) for s in sets},
        "quality": quality,
        "latency": latency,
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
    }


def compressed(source: Path, label: str, nbits: int, keep_full: bool) -> dict[str, Any]:
    """The compressed copy `label` of `source` (built unless a matching one exists)."""
    from latesearch.indexing import IndexStore, compress_index

    target = WORK / "engine" / f"{source.name}-{label}"
    built = None
    if not _matches(target, source, nbits, keep_full):
        plain = WORK / "engine" / f"{source.name}-nbits{nbits}"
        codec_from = plain if keep_full and _matches(plain, source, nbits, False) else None
        print(f"compressing {source.name} -> {target.name} ...", flush=True)
        started = time.perf_counter()
        compress_index(
            source, target, nbits=nbits, keep_full=keep_full, codec_from=codec_from, overwrite=True
        )
        built = round(time.perf_counter() - started, 1)
    with IndexStore.open(target) as store:
        n_tokens, codec = store.n_embeddings, store.manifest.codec
        stats = store.manifest.stats
    return {
        "folder": str(target),
        "nbits": nbits,
        "keep_full": keep_full,
        "n_centroids": (codec or {}).get("n_centroids"),
        "built_seconds_now": built,
        "compress_seconds": stats.get("compress_seconds"),
        **sizes(target, n_tokens),
    }


def _matches(target: Path, source: Path, nbits: int, keep_full: bool) -> bool:
    manifest = target / "manifest.json"
    if not manifest.is_file():
        return False
    from latesearch.indexing import IndexConfig

    m = json.loads(manifest.read_text(encoding="utf-8"))
    codec = IndexConfig.from_dict(m.get("index_config", {}), source=str(manifest)).codec
    origin = m.get("stats", {}).get("compressed_from")
    return (
        origin is not None
        and Path(origin).resolve() == source.resolve()
        and codec.nbits == nbits
        and codec.keep_full == keep_full
    )


def sizes(folder: Path, n_tokens: int) -> dict[str, Any]:
    """Bytes of the index proper (less docs.sqlite, bm25/, ann/), of bm25/ and ann/."""
    total = _bytes(folder)
    optional = {part: _bytes(folder / part) for part in OPTIONAL}
    core = total - _bytes(folder / "docs.sqlite") - sum(optional.values())
    return {
        "bytes": {
            "core": core,
            "docs_sqlite": _bytes(folder / "docs.sqlite"),
            **optional,
            "total": total,
        },
        "bytes_per_token": round(core / n_tokens, 3),
    }


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------------- quality
def measure_quality(reference: Any, loaded: dict[str, Any], sets: list[Any]) -> dict[str, Any]:
    """nDCG@10 / R@100 / overlap@10 of every method, its difference to exhaustive and the
    difference's paired significance."""
    from latesearch.evaluation.significance import paired_comparison

    queries = sets[0].queries
    exact, _ = _run(reference, queries, 100, "exact")
    top10 = {q: list(docs)[:10] for q, docs in exact.items()}
    ref, ref_per_query = _evaluate(exact, sets)
    out: dict[str, Any] = {"exact": {"metrics": ref, "overlap_at_10": 1.0}}
    methods = {"faiss-e2e": reference, **{f"engine-{v}": index for v, index in loaded.items()}}
    for name, index in methods.items():
        print(f"  quality {name}", flush=True)
        run10, t10 = _run(index, queries, 10, "e2e")
        run100, t100 = _run(index, queries, 100, "e2e")
        (at10, q10), (at100, q100) = _evaluate(run10, sets), _evaluate(run100, sets)
        metrics = {s: {"nDCG@10": at10[s]["nDCG@10"], "R@100": at100[s]["R@100"]} for s in at10}
        per_query = {s: {"nDCG@10": q10[s]["nDCG@10"], "R@100": q100[s]["R@100"]} for s in q10}
        delta = {
            s: {m: round(v - ref[s][m], 4) for m, v in row.items()} for s, row in metrics.items()
        }
        out[name] = {
            "metrics": metrics,
            "delta_vs_exact": delta,
            "p_value_vs_exact": {
                s: {m: round(paired_comparison(ref_per_query[s][m], values).p_value, 4)
                    for m, values in row.items()}
                for s, row in per_query.items()
            },  # fmt: skip
            "overlap_at_10": _overlap(run10, top10),
            "k10": t10,
            "k100": t100,
        }
    return out


def _run(index: Any, queries: dict[str, str], k: int, mode: str) -> tuple[dict, dict]:
    """{qid: {doc_id: score}} of all queries (batches of 32), and batch timings."""
    qids = list(queries)
    run: dict[str, dict[str, float]] = {}
    stages = dict.fromkeys((*STAGES, "total"), 0.0)
    scored = 0
    for start in range(0, len(qids), 32):
        part = qids[start : start + 32]
        for qid, hits in zip(
            part, index.search([queries[q] for q in part], k=k, mode=mode), strict=True
        ):
            run[qid] = {h.doc_id: h.score for h in hits}
        t = index.last_timings
        for key in stages:
            stages[key] += getattr(t, key)
        scored += t.n_candidates
    n = max(len(qids), 1)
    return run, {
        "ms_per_query": {key: round(1000 * v / n, 3) for key, v in stages.items()},
        "docs_scored_per_query": round(scored / n, 1),
    }


def _evaluate(run: dict, sets: list[Any]) -> tuple[dict, dict]:
    """({set: {metric: mean}}, {set: {metric: {qid: value}}}) of a run on every set."""
    from latesearch.evaluation import evaluate_run

    means, per_query = {}, {}
    for s in sets:
        result = evaluate_run({q: run[q] for q in s.queries if q in run}, s.qrels, METRICS)
        means[s.name] = {m: round(float(v), 4) for m, v in result.aggregate.items()}
        per_query[s.name] = {m: {q: row[m] for q, row in result.per_query.items()}
                             for m in result.aggregate}  # fmt: skip
    return means, per_query


def _overlap(run: dict, top10: dict[str, list[str]]) -> float:
    """Mean over queries of |top-10 ∩ exhaustive top-10| / 10."""
    values = [
        len(set(list(run[q])[:10]) & set(ref)) / max(1, min(10, len(ref)))
        for q, ref in top10.items()
    ]
    return round(statistics.fmean(values), 4)


# ---------------------------------------------------------------------- latency
def measure_latency(methods: dict[str, tuple[Any, dict]], texts: list[str], threads: int) -> Any:
    """One query per call at k=10, methods interleaved (order rotated per query)."""
    import faiss
    import torch

    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    print(f"  latency, {threads} thread(s), {len(texts)} queries", flush=True)
    try:
        names = list(methods)
        for name in names:
            index, options = methods[name]
            for text in texts[:2]:
                index.search(text, k=10, **options)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for i, text in enumerate(texts):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                index, options = methods[name]
                samples[name].append(_timed(index, text, options))
    finally:
        torch.set_num_threads(before[0])
        faiss.omp_set_num_threads(before[1])
    out: dict[str, Any] = {name: _summary(rows) for name, rows in samples.items()}
    faiss_search = out["faiss-e2e"]["search"]["median"]
    for name in names[1:]:
        out[name]["faiss_over_engine_search_median"] = round(
            faiss_search / out[name]["search"]["median"], 2
        )
    return out


def _timed(index: Any, text: str, options: dict) -> dict[str, float]:
    started = time.perf_counter()
    index.search(text, k=10, **options)
    wall = time.perf_counter() - started
    t = index.last_timings
    return {
        "total": wall,
        "search": wall - t.encode,
        "docs_scored": float(t.n_candidates),
        **{s: getattr(t, s) for s in STAGES},
    }


def _summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"queries": len(rows)}
    for key in ("total", "encode", "search"):
        values = [1000 * r[key] for r in rows]
        out[key] = {
            "median": round(statistics.median(values), 2),
            "p95": round(_percentile(values, 0.95), 2),
        }
    out["stages_mean_ms"] = {
        s: round(1000 * statistics.fmean(r[s] for r in rows), 2) for s in STAGES
    }
    out["docs_scored_mean"] = round(statistics.fmean(r["docs_scored"] for r in rows), 1)
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------------- markdown
def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Compressed index and engine (CPU)",
        "",
        "The CPU is shared with other jobs (load averages in the JSON): compare rows of one "
        "run, not absolute numbers.",
        "",
    ]
    for name, run in payload["runs"].items():
        lines += [
            f"## Model {name}: {run['model']}",
            "",
            f"Machine: {describe(run.get('machine', payload['machine']))}.",
            "",
            *_commands(run),
        ]
        lines += _size_table(run["collections"])
        for coll, result in run["collections"].items():
            lines += _quality_table(coll, result)
        lines += _latency_table(run["collections"])
    lines += [
        "Notes: bytes/token = index folder less docs.sqlite, bm25/ and ann/, over the "
        "number of token embeddings (the faiss ann/ component is only in the "
        "uncompressed reference: the engine does not use it). Engine quality at the "
        "`EngineParams.for_k` defaults (k=10: nDCG@10 and overlap@10; k=100: R@100); "
        "the faiss e2e at its defaults; in brackets the difference to exhaustive search "
        "and the p-value of a two-sided paired randomization test over the queries "
        "(`latesearch.evaluation.significance`, 10,000 sign flips). "
        "overlap@10 = mean |top-10 ∩ exhaustive "
        "top-10| / 10. Latency: wall time of one `Index.search` call at k=10; search "
        "= total less query encoding; ratio = faiss-e2e / engine of the search "
        "medians.",
        "",
    ]
    return "\n".join(lines)


def _commands(run: dict[str, Any]) -> list[str]:
    """The command(s) that produced the model's results, with their collections and dates."""
    by_command: dict[str, list[str]] = {}
    for coll, result in run["collections"].items():
        command = result.get("command", run.get("command", "?"))
        by_command.setdefault(command, []).append(f"{coll} {result.get('date', run.get('date'))}")
    lines = []
    for command, done in by_command.items():
        lines += [f"Command ({'; '.join(done)}):", "", f"    {command}", ""]
    return lines


def _size_table(collections: dict[str, Any]) -> list[str]:
    lines = [
        "### Bytes per token",
        "",
        "| collection | index | bytes/token | index MB | bm25/ MB | ann/ MB | tokens |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for coll, result in collections.items():
        rows = {"uncompressed fp16": result["reference"], **result["indexes"]}
        for label, info in rows.items():
            b = info["bytes"]
            lines.append(
                f"| {coll} | {label} | {info['bytes_per_token']:.2f} | "
                f"{b['core'] / 1e6:.1f} | {b['bm25'] / 1e6:.1f} | {b['ann'] / 1e6:.1f} "
                f"| {result['reference']['n_embeddings']} |"
            )
    return [*lines, ""]


def _quality_table(coll: str, result: dict[str, Any]) -> list[str]:
    sets = list(result["eval_sets"])
    head = [f"nDCG@10 {s}" for s in sets] + [f"R@100 {s}" for s in sets]
    counts = ", ".join(f"{s}: {n} queries" for s, n in result["eval_sets"].items())
    lines = [
        f"### Quality, {coll} ({counts})",
        "",
        "| method | " + " | ".join(head) + " | overlap@10 | docs scored (k=10) |",
        "|---|" + "---:|" * (len(head) + 2),
    ]
    for name, row in result["quality"].items():
        cells = []
        for metric in ("nDCG@10", "R@100"):
            for s in sets:
                value = row["metrics"][s][metric]
                delta = row.get("delta_vs_exact", {}).get(s, {}).get(metric)
                p = row.get("p_value_vs_exact", {}).get(s, {}).get(metric)
                extra = "" if p is None else f", p {p:.2f}"
                cells.append(f"{value:.4f}" + ("" if delta is None else f" ({delta:+.4f}{extra})"))
        docs = row["k10"]["docs_scored_per_query"] if "k10" in row else "all"
        lines.append(f"| {name} | {' | '.join(cells)} | {row['overlap_at_10']:.3f} | {docs} |")
    return [*lines, ""]


def _latency_table(collections: dict[str, Any]) -> list[str]:
    lines = [
        "### Latency, one query per call, k=10 (ms)",
        "",
        "| collection | threads | method | total median / p95 | encode median | "
        "search median / p95 | candidates | interaction | gather | score | docs scored | "
        "faiss / engine (search) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for coll, result in collections.items():
        for threads, methods in result["latency"].items():
            for name, r in methods.items():
                st = r["stages_mean_ms"]
                ratio = r.get("faiss_over_engine_search_median")
                lines.append(
                    f"| {coll} | {threads} | {name} | {r['total']['median']:.1f} / "
                    f"{r['total']['p95']:.1f} | {r['encode']['median']:.1f} | "
                    f"{r['search']['median']:.1f} / {r['search']['p95']:.1f} | "
                    f"{st['candidates']:.1f} | {st['interaction']:.1f} | {st['gather']:.1f} | "
                    f"{st['score']:.1f} | {r['docs_scored_mean']:.0f} | "
                    f"{'-' if ratio is None else f'{ratio:.2f}x'} |"
                )
    loads = [
        f"{coll} {r['load_average_before_after'][0][0]:.1f} -> "
        f"{r['load_average_before_after'][1][0]:.1f}"
        for coll, r in collections.items()
    ]
    return [
        *lines,
        "",
        f"1-minute load average over the quality and latency runs (2 cores): {'; '.join(loads)}.",
        "",
    ]


if __name__ == "__main__":
    main()
