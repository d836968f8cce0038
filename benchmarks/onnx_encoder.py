"""The ONNX Runtime encoder backend against torch, on the default model: query encoding
latency, agreement with torch, retrieval quality, document encoding throughput.

1. latency: each SciFact test query encoded alone (`encode_queries([q])`, tokenization
   included), each backend in turn over all the queries, --latency-rounds rounds (4), at
   1 and 2 threads
   (torch: torch.set_num_threads; ONNX Runtime: the session's intra-op threads); median
   and p90;
2. agreement: cosine of every scored query token, and of the kept tokens of the first
   --docs SciFact documents, against torch (min and mean);
3. quality: nDCG@10 on SciFact (and its novel subset) and Vaswani, queries encoded by each
   backend, searched in the same torch-built index (the default: the engine over 2 bits with
   the fp16 tier), top-1000 runs as table2.py; overlap@10 with torch's rankings; end-to-end
   latency at k=10 (one query per call, 2 threads); per set, the queries each backend
   moved up or down against torch and a paired randomization test of the difference;
4. throughput: the first --docs SciFact documents encoded (batches of 64, as an index
   build) at 2 threads, docs/s, best of --rounds.

Targets, set before measuring: the ONNX encoder at least 2x faster than torch on queries
with nDCG@10 within 0.002 of torch on every set; int8 accepted only within 0.005. int8 is
onnxruntime's MatMulNBits (8-bit weights in blocks of 128, int8 products; see
latesearch/modeling/onnx.py).

    python benchmarks/onnx_encoder.py [--data ../shared/data] [--docs 1000] [--rounds 2]
        [--latency-rounds 4] [--latency-queries 100]

Needs latesearch[onnx]. Writes benchmarks/results/onnx-encoder-cpu.json and .md.
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

BACKENDS = ("torch", "onnx-fp32", "onnx-int8")
THREADS = (1, 2)
METRICS = "nDCG@10"
K = 1000
TARGET = {"speedup": 2.0, "onnx-fp32": 0.002, "onnx-int8": 0.005}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=common.REPO.parent / "shared" / "data")
    p.add_argument("--docs", type=int, default=1000, help="SciFact documents encoded (1000)")
    p.add_argument("--rounds", type=int, default=2, help="throughput rounds (best of, 2)")
    p.add_argument("--latency-rounds", type=int, default=4,
                   help="query latency rounds, the backends in rotating order (4)")
    p.add_argument("--latency-queries", type=int, default=100,
                   help="queries timed end to end per backend (100)")  # fmt: skip
    p.add_argument("--max-queries", type=int, default=None,
                   help="only the first N queries of each set (a quick check; default all)")
    p.add_argument("--out", type=Path, default=common.RESULTS)
    args = p.parse_args()
    import onnxruntime
    import torch

    from latesearch.modeling.onnx import load_encoder

    torch.manual_seed(0)
    colbert = common.load_model(None)
    label = common.model_label(None, colbert)
    started = time.perf_counter()
    encoders = {
        (name, threads): load_encoder(colbert, name.removeprefix("onnx-"), threads=threads)
        for name in BACKENDS[1:]
        for threads in THREADS
    }
    prepare_s = time.perf_counter() - started
    machine = common.machine_info()
    machine["onnxruntime"] = onnxruntime.__version__
    payload: dict[str, Any] = {
        "benchmark": "onnx-encoder", "machine": machine, "model": label,
        "export": {"seconds_to_load_all": prepare_s,
                   "exported_now": sorted({f"{n}" for (n, _), e in encoders.items()
                                           if e.exported}),
                   "files": {n: str(e.path) for (n, t), e in encoders.items() if t == 2},
                   "bytes": {n: e.path.stat().st_size for (n, t), e in encoders.items()
                             if t == 2}},
    }  # fmt: skip
    scifact = common.collection("scifact", args.data)
    queries = list(scifact.eval_sets()[0].queries.values())[: args.max_queries]
    docs = read_docs(scifact.corpus, args.docs)

    def use(name: str, threads: int) -> None:
        torch.set_num_threads(threads)
        colbert.onnx_encoder = None if name == "torch" else encoders[(name, threads)]

    payload["latency"] = query_latency(colbert, queries, use, args.latency_rounds)
    print(payload["latency"], flush=True)
    payload["agreement"] = agreement(colbert, queries, docs, use)
    print(payload["agreement"], flush=True)
    payload["throughput"] = throughput(colbert, docs, use, args.rounds)
    print(payload["throughput"], flush=True)
    payload["quality"] = {name: quality(common.collection(name, args.data), colbert, use, args)
                          for name in common.COLLECTIONS}  # fmt: skip
    use("torch", 2)
    payload["verdict"] = verdict(payload)
    print(payload["verdict"], flush=True)
    common.write_results(args.out, "onnx-encoder-cpu", payload, markdown(payload))


def read_docs(path: Path, n: int) -> list[str]:
    from latesearch.data import read_collection

    texts = []
    for doc in read_collection(path):
        texts.append(doc.full_text())
        if len(texts) == n:
            break
    return texts


# ---------------------------------------------------------------------- 1. latency
def query_latency(colbert: Any, queries: list[str], use: Any, rounds: int = 4) -> dict[str, Any]:
    """ms per single-query `encode_queries` call: each backend over all the queries in a
    block (after 5 warm-up calls), `rounds` rounds in rotating order. (Interleaving the
    backends call by call would make the runtime compete with torch's spinning thread pool
    for the cores, which a process using one backend never sees.)"""
    out: dict[str, Any] = {"queries": len(queries), "rounds": rounds}
    for threads in THREADS:
        times: dict[str, list[float]] = {name: [] for name in BACKENDS}
        for r in range(rounds):
            for name in BACKENDS[r % 3 :] + BACKENDS[: r % 3]:
                use(name, threads)
                for query in queries[:5]:
                    colbert.encode_queries([query])
                for query in queries:
                    started = time.perf_counter()
                    colbert.encode_queries([query])
                    times[name].append(1000 * (time.perf_counter() - started))
        out[f"threads_{threads}"] = {name: summary(t) for name, t in times.items()}
    return out


def summary(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90)),
            "mean": statistics.fmean(times), "n": len(times)}  # fmt: skip


# ---------------------------------------------------------------------- 2. agreement
def agreement(colbert: Any, queries: list[str], docs: list[str], use: Any) -> dict[str, Any]:
    use("torch", 2)
    q_ref, q_mask = colbert.encode_queries(queries, return_mask=True)
    d_ref = colbert.encode_documents(docs)
    out: dict[str, Any] = {}
    for name in BACKENDS[1:]:
        use(name, 2)
        q = colbert.encode_queries(queries)
        q_cos = cosines(q[q_mask], q_ref[q_mask])
        d = colbert.encode_documents(docs)
        d_cos = cosines(np.concatenate(d), np.concatenate(d_ref))
        out[name] = {
            "query_tokens": {"min": float(q_cos.min()), "mean": float(q_cos.mean()),
                             "n": int(q_cos.size)},
            "document_tokens": {"min": float(d_cos.min()), "mean": float(d_cos.mean()),
                                "n": int(d_cos.size)},
            "max_abs_diff_queries": float(np.abs(np.asarray(q) - np.asarray(q_ref)).max()),
        }  # fmt: skip
    return out


def cosines(a: Any, b: Any) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# ---------------------------------------------------------------------- 3. quality
def quality(coll: Any, colbert: Any, use: Any, args: argparse.Namespace) -> dict[str, Any]:
    from latesearch.evaluation import evaluate_run
    from latesearch.evaluation.runner import latency_ms, run_queries

    index = common.colbert_index(coll, colbert)
    engine = common.engine_index(coll, index, nbits=2, keep_full=True)  # the default
    sets = coll.eval_sets()
    if args.max_queries:
        for s in sets:
            s.queries = dict(list(s.queries.items())[: args.max_queries])
    sample = list(sets[0].queries.values())[: args.latency_queries]
    out: dict[str, Any] = {"index": str(engine.folder), "sets": [s.name for s in sets]}
    runs: dict[str, dict[str, dict[str, float]]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}  # backend -> set -> qid -> nDCG
    for name in BACKENDS:
        use(name, 2)

        def search(texts: list[str], k: int = K) -> list[list[tuple[str, float]]]:
            return [common.ranking(h) for h in engine.search(texts, k=k)]

        result = run_queries(search, sets[0].queries, batch_size=32)
        runs[name] = result.run
        scores = {s.name: evaluate_run(result.run, s.qrels, METRICS) for s in sets}
        per_query[name] = {n: {q: v[METRICS] for q, v in r.per_query.items()}
                           for n, r in scores.items()}  # fmt: skip
        out[name] = {
            "effectiveness": {n: r.aggregate for n, r in scores.items()},
            "latency_ms_k10": latency_ms(lambda texts: search(texts, 10), sample, warmup=2),
        }  # fmt: skip
        if name != "torch":
            out[name]["overlap@10"] = overlap(runs["torch"], result.run, 10)
            out[name]["paired"] = {n: paired(per_query["torch"][n], per_query[name][n])
                                   for n in per_query[name]}  # fmt: skip
        print(coll.name, name, out[name], flush=True)
    return out


def paired(reference: dict[str, float], found: dict[str, float]) -> dict[str, Any]:
    """The per-query nDCG@10 differences against torch: how many queries moved each way,
    and the paired randomization test's p-value (is the mean difference noise?)."""
    from latesearch.evaluation.significance import paired_comparison

    c = paired_comparison(reference, found, metric=METRICS)
    return {"diff": c.diff, "p_value": c.p_value, "wins": c.wins, "losses": c.losses,
            "queries": c.n_queries}  # fmt: skip


def overlap(reference: dict[str, dict[str, float]], run: dict[str, dict[str, float]],
            k: int) -> float:  # fmt: skip
    """Mean share of torch's top k that the other run's top k holds."""
    def top(ranking: dict[str, float]) -> set[str]:
        return set(sorted(ranking, key=lambda d: -ranking[d])[:k])

    shares = [len(top(reference[q]) & top(run.get(q, {}))) / max(1, len(top(reference[q])))
              for q in reference]  # fmt: skip
    return float(statistics.fmean(shares)) if shares else float("nan")


# ---------------------------------------------------------------------- 4. throughput
def throughput(colbert: Any, docs: list[str], use: Any, rounds: int) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {name: [] for name in BACKENDS}
    for _ in range(rounds):
        for name in BACKENDS:
            use(name, 2)
            started = time.perf_counter()
            colbert.encode_documents(docs, batch_size=64)
            seconds[name].append(time.perf_counter() - started)
    return {"docs": len(docs), "threads": 2, "seconds": seconds,
            "docs_per_s": {n: len(docs) / min(s) for n, s in seconds.items()}}  # fmt: skip


# ---------------------------------------------------------------------- verdict, markdown
def verdict(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"targets": TARGET}
    for name in BACKENDS[1:]:
        lat = payload["latency"]
        speedups = {t: lat[f"threads_{t}"]["torch"]["median"] / lat[f"threads_{t}"][name]["median"]
                    for t in THREADS}  # fmt: skip
        gaps = {}
        for entry in payload["quality"].values():
            for s in entry["sets"]:
                want = entry["torch"]["effectiveness"][s]["nDCG@10"]
                gaps[s] = entry[name]["effectiveness"][s]["nDCG@10"] - want
        fast = min(speedups.values()) >= TARGET["speedup"]
        close = max(abs(g) for g in gaps.values()) <= TARGET[name]
        out[name] = {"speedup_median": speedups, "ndcg10_gap": gaps, "fast_enough": fast,
                     "quality_kept": close, "accepted": fast and close}  # fmt: skip
    fp32, int8 = out["onnx-fp32"]["accepted"], out["onnx-int8"]["accepted"]
    out["recommended"] = "onnx-int8" if int8 else "onnx-fp32" if fp32 else "torch"
    return out


def markdown(payload: dict[str, Any]) -> str:
    lat, agree, thr, ver = (payload[k] for k in ("latency", "agreement", "throughput",
                                                 "verdict"))  # fmt: skip
    text = common.header(
        "The ONNX Runtime encoder backend against torch", payload["machine"], payload["model"],
        f"onnxruntime {payload['machine']['onnxruntime']}; ONNX files: "
        + ", ".join(f"{n} {b / 2**20:.0f} MiB" for n, b in payload["export"]["bytes"].items())
        + ".",
    )  # fmt: skip
    lines = [text, f"### Query encoding latency (ms, one query per call, {lat['queries']} "
             f"SciFact test queries x {lat['rounds']} rounds, tokenization included)", "",
             "| backend | 1 thread median | p90 | speed-up | 2 threads median | p90 | speed-up |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in BACKENDS:
        cells = []
        for t in THREADS:
            row = lat[f"threads_{t}"]
            speed = row["torch"]["median"] / row[name]["median"]
            cells += [f"{row[name]['median']:.2f}", f"{row[name]['p90']:.2f}", f"{speed:.2f}x"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "### Agreement with torch (cosine per token)", "",
              "| backend | query tokens min | mean | document tokens min | mean |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, row in agree.items():
        q, d = row["query_tokens"], row["document_tokens"]
        lines.append(f"| {name} | {q['min']:.6f} | {q['mean']:.6f} | {d['min']:.6f} | "
                     f"{d['mean']:.6f} |")  # fmt: skip
    lines += ["", f"Over {agree['onnx-fp32']['query_tokens']['n']} scored query tokens and "
              f"{agree['onnx-fp32']['document_tokens']['n']} document tokens (the first "
              f"{thr['docs']} SciFact documents).", "",
              "### Retrieval quality (queries encoded by each backend, one torch-built index)",
              "", "The default index (the engine over 2 bits with the fp16 tier), top-1000 "
              "runs; overlap@10: share of torch's top 10 kept; ms: end to end at k=10, one "
              "query per call, 2 threads.", "",
              "| backend | SciFact nDCG@10 | SciFact-novel | Vaswani | overlap@10 SciFact | "
              "Vaswani | ms SciFact | Vaswani |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    sci, vas = payload["quality"]["scifact"], payload["quality"]["vaswani"]
    for name in BACKENDS:
        eff = {**sci[name]["effectiveness"], **vas[name]["effectiveness"]}
        ov = [f"{e[name]['overlap@10']:.3f}" if name != "torch" else "1" for e in (sci, vas)]
        lines.append(
            f"| {name} | {eff['scifact']['nDCG@10']:.4f} | {eff['scifact-novel']['nDCG@10']:.4f}"
            f" | {eff['vaswani']['nDCG@10']:.4f} | {ov[0]} | {ov[1]} | "
            f"{sci[name]['latency_ms_k10']['median']:.1f} | "
            f"{vas[name]['latency_ms_k10']['median']:.1f} |"
        )
    lines += ["", "Per query, against torch (nDCG@10): queries better / worse, and the paired "
              "randomization test's p-value of the mean difference.", "",
              "| backend | SciFact | SciFact-novel | Vaswani |", "|---|---|---|---|"]  # fmt: skip
    for name in BACKENDS[1:]:
        both = {**sci[name]["paired"], **vas[name]["paired"]}
        cells = [f"{both[n]['wins']} / {both[n]['losses']}, p = {both[n]['p_value']:.2f}"
                 for n in ("scifact", "scifact-novel", "vaswani")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"### Document encoding throughput ({thr['docs']} SciFact documents, "
              "batches of 64, 2 threads, best of "
              f"{len(thr['seconds']['torch'])})", "", "| backend | docs/s | vs torch |",
              "|---|---|---|"]  # fmt: skip
    for name, rate in thr["docs_per_s"].items():
        lines.append(f"| {name} | {rate:.1f} | {rate / thr['docs_per_s']['torch']:.2f}x |")
    lines += ["", "### Verdict", "",
              f"Targets, set before measuring: at least {TARGET['speedup']:.0f}x torch's "
              "median query encoding at 1 and 2 threads, nDCG@10 within "
              f"{TARGET['onnx-fp32']} of torch on every set (fp32) or within "
              f"{TARGET['onnx-int8']} (int8).", ""]  # fmt: skip
    for name in BACKENDS[1:]:
        row = ver[name]
        gap = max(row["ndcg10_gap"].values(), key=abs)
        speed = ", ".join(f"{s:.2f}x at {t} thread{'s' * (int(t) > 1)}"
                          for t, s in row["speedup_median"].items())  # fmt: skip
        strict = abs(gap) <= TARGET["onnx-fp32"]
        lines.append(f"- {name}: {speed}; largest nDCG@10 gap {gap:+.4f} "
                     f"({'within' if strict else 'outside'} {TARGET['onnx-fp32']}): "
                     f"{'accepted' if row['accepted'] else 'not accepted'}.")  # fmt: skip
    lines.append(f"- Recommended: **{ver['recommended']}**.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
