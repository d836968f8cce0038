"""Search latency and throughput as the paper's Section 4.2, on one existing index.

    python benchmarks/search.py --index .work/indexes/scifact-default \
        --queries ../shared/data/scifact/queries.jsonl \
        --qrels ../shared/data/scifact/qrels/test.tsv --limit 100

Per-query latency, one query at a time, broken down by stage (query encoding, candidate
generation, gathering embeddings, MaxSim scoring) for BM25 top-k re-ranking (k = 10, 100,
1000) and for end-to-end retrieval (faiss IVFPQ) at the index's default settings; the
settings are interleaved query by query so that load drifts hit all alike; median and p95.
Batch throughput (queries/s) of e2e, rerank-1000 and exhaustive search over all selected
queries. Quality against exhaustive MaxSim: overlap of each top-k with the exhaustive top-k,
the e2e overlap as k' varies (from the ANN candidates: e2e re-ranks them exactly, so its
top-k holds exactly the exhaustive top-k documents that are candidates), and whether
rerank equals exhaustive MaxSim restricted to the BM25 candidates. PyLate's PLAID search is
added when it runs here; otherwise the JSON says why. Writes
benchmarks/results/search-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(1, str(ROOT))

from _machine import describe, machine_info  # noqa: E402

STAGES = ("encode", "candidates", "gather", "score", "total")
SWEEP_K_PRIMES = (16, 32, 64, 128, 256, 1024)
TIE_TOLERANCE = 1e-5  # scores closer than this are float-rounding ties


def main() -> None:
    args = parse_args()
    import numpy as np
    import torch

    from latesearch import Index
    from latesearch.data import read_qrels, read_queries

    queries = read_queries(args.queries)
    if args.qrels:
        judged = read_qrels(args.qrels)
        queries = {qid: text for qid, text in queries.items() if qid in judged}
    qids = list(queries)[: args.throughput_limit or None]
    texts = [queries[q] for q in qids]
    timed = texts[: args.limit]
    index = Index.load(args.index, device=args.device)
    model = index.model  # loaded before any clock starts
    if args.threads:  # after loading: the default model's seeded projection (a QR) differs
        torch.set_num_threads(args.threads)  # in the last bits with the thread count
    device = str(index.searcher.device or model.device)
    k = args.k
    load_before = os.getloadavg()

    # Exhaustive reference: every document's score for every query (also its throughput).
    print(f"exhaustive MaxSim for {len(texts)} queries ...", file=sys.stderr)
    exact_all = index.search(texts, k=len(index), mode="exact", batch_size=args.batch_size)
    exact_batch = index.last_timings.to_dict()
    exact_top = [[h.doc_id for h in hits[:k]] for hits in exact_all]
    exact_scores = [{h.doc_id: h.score for h in hits} for hits in exact_all]

    settings = [(f"rerank-{d}", {"mode": "rerank", "bm25_k": d}) for d in args.rerank_depths]
    settings.append(("e2e", {"mode": "e2e"}))
    settings += [(f"e2e k'={kp}", {"mode": "e2e", "k_prime": kp}) for kp in args.k_primes]
    for _, options in settings:  # warm-up (page cache, BM25/faiss loading, allocators)
        index.search(timed[: args.warmup] or texts[:1], k=k, **options)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _ in settings}
    overlaps: dict[str, list[float]] = {name: [] for name, _ in settings}
    print(f"latency: {len(timed)} queries x {len(settings)} settings ...", file=sys.stderr)
    for i, text in enumerate(timed):
        for name, options in settings:
            start = time.perf_counter()
            hits = index.search(text, k=k, **options)
            wall = time.perf_counter() - start
            t = index.last_timings.to_dict()
            samples[name].append({**{s: float(t[s]) for s in STAGES}, "wall": wall,
                                  "docs_scored": float(t["n_candidates"])})  # fmt: skip
            overlaps[name].append(_overlap([h.doc_id for h in hits], exact_top[i], k))
    exact_latency = []
    for text in timed[: args.exact_limit]:
        index.search(text, k=k, mode="exact")
        exact_latency.append({s: float(index.last_timings.to_dict()[s]) for s in STAGES})

    latency = {name: _summary(rows, overlaps[name]) for name, rows in samples.items()}
    if exact_latency:
        latency["exact"] = _summary(exact_latency, [1.0] * len(exact_latency))

    print("throughput ...", file=sys.stderr)
    throughput = {"exact": _rate(exact_batch)}
    rerank_depth = max(args.rerank_depths)
    for name, options in (("e2e", {"mode": "e2e"}),
                          (f"rerank-{rerank_depth}", {"mode": "rerank", "bm25_k": rerank_depth})):
        ranked = index.search(texts, k=k, batch_size=args.batch_size, **options)  # fmt: skip
        throughput[name] = _rate(index.last_timings.to_dict())
        throughput[name]["overlap_at_k"] = round(float(np.mean(
            [_overlap([h.doc_id for h in r], e, k) for r, e in zip(ranked, exact_top, strict=True)]
        )), 4)  # fmt: skip

    print("k' sweep and rerank check ...", file=sys.stderr)
    sweep = _k_prime_sweep(index, texts, exact_top, k)
    rerank_check = _rerank_check(index, texts, exact_scores, rerank_depth)
    ann = index.searcher.ann
    result: dict[str, Any] = {
        "benchmark": "search",
        "machine": machine_info(),
        "device": device,
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "index": str(args.index),
        "n_docs": len(index),
        "n_embeddings": index.store.n_embeddings,
        "model_source": index.store.manifest.model_source,
        "ann": {**{key: ann.manifest.get(key) for key in ("kind", "n_partitions",
                                                          "pq_subvectors", "trained_on")},
                "nprobe_default": ann.config.nprobe,
                "k_prime_default": ann.config.k_prime_for(len(ann)),
                "on_gpu": ann.on_gpu},  # fmt: skip
        "queries": {"file": str(args.queries), "qrels": str(args.qrels or ""),
                    "selected": len(texts), "timed_one_at_a_time": len(timed)},  # fmt: skip
        "k": k,
        "latency_ms": latency,
        "throughput": throughput,
        "e2e_overlap_vs_k_prime": sweep,
        "rerank_vs_exact_restricted": rerank_check,
        "pylate": _pylate(args),
        "notes": "Latency: one query per call, settings interleaved per query; stages from "
        "Index.last_timings (encode = query encoder; candidates = BM25 or faiss incl. id "
        "mapping; gather = reading candidate embeddings from the memory-mapped store and "
        "converting them for the scoring device; score = MaxSim + top-k); wall = the whole "
        "Index.search call. overlap = |top-k ∩ exhaustive top-k| / k. The CPU is shared "
        "with other jobs (load average recorded): compare settings within this run only.",
    }
    write_results(result, args.out, device.split(":")[0])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", required=True, type=Path, help="index folder with bm25/ and ann/")
    p.add_argument("--queries", required=True, type=Path, help="queries (TSV, JSONL, TREC)")
    p.add_argument("--qrels", type=Path, default=None, help="keep only judged queries")
    p.add_argument("--limit", type=int, default=100, help="queries timed one at a time (100)")
    p.add_argument("--throughput-limit", type=int, default=0,
                   help="queries for batch throughput and overlap (0 = all)")  # fmt: skip
    p.add_argument("--exact-limit", type=int, default=10,
                   help="queries timed one at a time for exhaustive search (10)")  # fmt: skip
    p.add_argument("-k", type=int, default=10, help="results per query (10)")
    p.add_argument("--rerank-depths", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--k-primes", type=int, nargs="*", default=[],
                   help="extra e2e settings timed beside the default k'")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=128, help="queries per batch (128)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up queries per setting (3)")
    p.add_argument("--device", default=None, help="scoring device (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--pylate-path", default=os.environ.get("LATESEARCH_PYLATE_PATH", ""),
                   help="PYTHONPATH entries where pylate is installed")  # fmt: skip
    return p.parse_args()


def _overlap(got: list[str], reference: list[str], k: int) -> float:
    return len(set(got[:k]) & set(reference[:k])) / max(1, min(k, len(reference)))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(rows: list[dict[str, float]], overlaps: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"queries": len(rows)}
    for key in rows[0]:
        values = [r[key] for r in rows]
        scale = 1.0 if key == "docs_scored" else 1000.0
        out[key] = {"median": round(statistics.median(values) * scale, 3),
                    "p95": round(_percentile(values, 0.95) * scale, 3)}  # fmt: skip
    out["overlap_at_k"] = round(statistics.fmean(overlaps), 4)
    return out


def _rate(t: dict[str, Any]) -> dict[str, Any]:
    n = int(t["n_queries"])
    return {"queries": n, "queries_per_s": round(n / t["total"], 3),
            "stage_seconds": {s: round(float(t[s]), 3) for s in STAGES},
            "candidates_per_query": round(t["n_candidates"] / max(n, 1), 1)}  # fmt: skip


def _k_prime_sweep(index: Any, texts: list[str], exact_top: list[list[str]], k: int) -> Any:
    """e2e overlap@k and candidates per query as k' varies (default nprobe)."""
    import numpy as np

    from latesearch.search.candidates import ann_candidates

    Q = index.model.encode_queries(texts)
    mask = Q.abs().sum(-1) > 0
    ids = index.store.doc_ids
    ann = index.searcher.ann
    rows = []
    for kp in sorted({*SWEEP_K_PRIMES, ann.config.k_prime_for(len(ann))}):
        start = time.perf_counter()
        cands = ann_candidates(ann, Q, mask, k_prime=kp, nprobe=None)
        seconds = time.perf_counter() - start
        overlap = np.mean([len(set(ids[c]) & set(e)) / k for c, e in zip(cands, exact_top,
                                                                            strict=True)])
        rows.append({"k_prime": kp, "overlap_at_k": round(float(overlap), 4),
                     "candidates_per_query": round(float(np.mean([len(c) for c in cands])), 1),
                     "candidate_ms_per_query": round(seconds / len(texts) * 1000, 3),
                     "default": kp == ann.config.k_prime_for(len(ann))})  # fmt: skip
    return rows


def _rerank_check(index: Any, texts: list[str], exact_scores: list[dict[str, float]],
                  depth: int) -> dict[str, Any]:  # fmt: skip
    """rerank over BM25 top-`depth` against the exhaustive scores of the same documents."""
    from latesearch.indexing.bm25 import BM25Index

    candidates = BM25Index.load(index.folder / "bm25").search(texts, depth)
    ranked = index.search(texts, k=depth, mode="rerank", bm25_k=depth)
    same_sets = same_lists = sorted_within_ties = 0
    max_diff = 0.0
    for cands, hits, scores in zip(candidates, ranked, exact_scores, strict=True):
        got = [h.doc_id for h in hits]
        same_sets += set(got) == {doc_id for doc_id, _ in cands}
        chosen = set(got)
        same_lists += got == [d for d in scores if d in chosen]  # exhaustive order
        reference = [scores[d] for d in got]
        pairs = zip(reference, reference[1:], strict=False)
        sorted_within_ties += all(a >= b - TIE_TOLERANCE for a, b in pairs)
        max_diff = max([max_diff] + [abs(h.score - scores[h.doc_id]) for h in hits])
    n = len(texts)
    return {
        "bm25_depth": depth,
        "queries": n,
        "same_candidate_set": same_sets,
        "identical_ranked_lists": same_lists,
        "ranked_lists_equal_up_to_ties": sorted_within_ties,
        "tie_tolerance": TIE_TOLERANCE,
        "max_abs_score_difference": max_diff,
        "what": "rerank(BM25 top-depth) vs exhaustive MaxSim scores of the same documents; "
        "lists that differ only swap documents whose exhaustive scores are within the "
        "tie tolerance (different matmul shapes round differently in the last bits)",
    }


PYLATE_PROBE = "from pylate import indexes; indexes.PLAID  # noqa\nimport fast_plaid  # noqa\n"


def _pylate(args: argparse.Namespace) -> dict[str, Any]:
    """Whether PyLate's PLAID index can run here (its fast-plaid backend), in a subprocess."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [args.pylate_path,
                                                                     str(ROOT)]))}  # fmt: skip
    probe = subprocess.run([sys.executable, "-c", PYLATE_PROBE], env=env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    if probe.returncode != 0:
        tail = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ran": False, "pythonpath": args.pylate_path,
                "why": f"PyLate's PLAID search cannot run here: {tail}. pylate.indexes.PLAID "
                "needs the fast-plaid extension (wheels are built per torch release, the "
                "newest for torch 2.11; this machine has torch "
                f"{machine_info()['torch']}) or colbert-ai's Stanford backend; neither is "
                "installed."}  # fmt: skip
    return {"ran": False, "pythonpath": args.pylate_path,
            "why": "fast-plaid imports, but the PLAID comparison is not implemented yet"}


def write_results(result: dict[str, Any], out: Path, device: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"search-{device}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    md = path.with_suffix(".md")
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(markdown(result), encoding="utf-8")
    os.replace(tmp, md)
    print(f"wrote {path} and {md}", file=sys.stderr)


def markdown(r: dict[str, Any]) -> str:
    ann, lat = r["ann"], r["latency_ms"]
    lines = [
        f"# Search latency ({Path(r['index']).name}: {r['n_docs']} documents, "
        f"{r['n_embeddings']} embeddings)",
        "",
        f"Machine: {describe(r['machine'])}, {r['machine']['torch_threads']} torch threads, "
        f"scoring on {r['device']}; load average {r['load_average_before_after'][0][0]:.1f} "
        "(shared CPU: compare rows, not absolute numbers). "
        f"ANN: {ann['kind']} P={ann['n_partitions']}, s={ann['pq_subvectors']}, "
        f"p={ann['nprobe_default']}, k'={ann['k_prime_default']}. k={r['k']}.",
        "",
        "Per query (ms, median / p95), one query at a time:",
        "",
        "| setting | encode | candidates | gather | score | total | docs scored | "
        "overlap@k |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in lat.items():
        cells = [f"{row[s]['median']:.1f} / {row[s]['p95']:.1f}" for s in STAGES]
        docs = row.get("docs_scored", {}).get("median", "-")
        lines.append(f"| {name} | {' | '.join(cells)} | {docs} | {row['overlap_at_k']:.3f} |")
    lines += ["", "Batch throughput:", "", "| mode | queries | queries/s | overlap@k |",
              "|---|---:|---:|---:|"]  # fmt: skip
    for name, row in r["throughput"].items():
        lines.append(f"| {name} | {row['queries']} | {row['queries_per_s']:.2f} | "
                     f"{row.get('overlap_at_k', 1.0):.3f} |")  # fmt: skip
    lines += ["", "e2e overlap@k with exhaustive MaxSim as k' varies (nprobe default):", "",
              "| k' | overlap@k | candidates/query |", "|---:|---:|---:|"]  # fmt: skip
    for row in r["e2e_overlap_vs_k_prime"]:
        mark = " (default)" if row["default"] else ""
        lines.append(f"| {row['k_prime']}{mark} | {row['overlap_at_k']:.4f} | "
                     f"{row['candidates_per_query']} |")  # fmt: skip
    c = r["rerank_vs_exact_restricted"]
    lines += ["", f"rerank (BM25 top-{c['bm25_depth']}) vs exhaustive MaxSim restricted to the "
              f"candidates, {c['queries']} queries: same set {c['same_candidate_set']}, "
              f"identical lists {c['identical_ranked_lists']}, equal up to ties "
              f"(<{c['tie_tolerance']}) {c['ranked_lists_equal_up_to_ties']}, max |score "
              f"difference| {c['max_abs_score_difference']:.2e}.", "",
              f"PyLate PLAID: {'ran' if r['pylate']['ran'] else r['pylate']['why']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
