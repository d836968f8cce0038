"""The dense view and the fused mode: which source, and whether it becomes the default.

Applies the rules of docs/search.md ("The dense view"), written before measuring:

1. cost: builds of the first --cost-docs SciFact documents without a dense view, with
   dense="pooled" and with dense="backbone" (the default model, in this process, the three
   interleaved, --cost-rounds rounds; median seconds);
2. quality on the dev sets (SciFact dev: the 150 training-judgement queries the default
   model was held out from, over the whole corpus; demo: its 20 judged queries and the 108
   judged pydocs questions), for each source: mode="e2e" (MaxSim alone), "dense", and
   "fused" (zscore at w 0.3 / 0.5 / 0.7, rrf at 0.5), runs of depth 100;
3. the decision, then the same methods on the test sets (SciFact test and novel, Vaswani;
   and the demo questions again), with latency (one query per call, encoding included).

Indexes (the default: 2 bits with the fp16 tier, plus the dense view) are built once under
.work/eval/fused/ and reused while the model is the same.

    python benchmarks/fused.py [--data ../shared/data] [--cost-docs 600] [--cost-rounds 2]
        [--latency-queries 30]

Writes benchmarks/results/fused-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

SOURCES = ("pooled", "backbone")
METRICS = "nDCG@10 R@100"
DEPTH = 100
COST_LIMIT = 1.3
WEIGHTS = (0.3, 0.5, 0.7)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=common.REPO.parent / "shared" / "data")
    p.add_argument("--cost-docs", type=int, default=600)
    p.add_argument("--cost-rounds", type=int, default=2)
    p.add_argument("--latency-queries", type=int, default=30)
    p.add_argument("--out", type=Path, default=common.RESULTS)
    args = p.parse_args()
    colbert = common.load_model(None)
    payload: dict[str, Any] = {"benchmark": "fused", "machine": common.machine_info(),
                               "model": common.model_label(None, colbert)}  # fmt: skip
    payload["cost"] = build_cost(args, colbert)
    print(json.dumps(payload["cost"]), flush=True)
    dev, test = eval_sets(args.data)
    payload["dev"] = {src: evaluate(args, colbert, src, dev, latency=False) for src in SOURCES}
    payload["decision"] = decide(payload)
    print(json.dumps(payload["decision"]), flush=True)
    payload["test"] = {src: evaluate(args, colbert, src, test, latency=True) for src in SOURCES}
    common.write_results(args.out, "fused-cpu", payload, markdown(payload))


# ---------------------------------------------------------------------- cost
def build_cost(args: argparse.Namespace, colbert: Any) -> dict[str, Any]:
    from latesearch import Index

    docs = []
    with open(args.data / "scifact" / "corpus.jsonl", encoding="utf-8") as handle:
        for line, _ in zip(handle, range(args.cost_docs), strict=False):
            docs.append(json.loads(line))
    seconds: dict[str, list[float]] = {"none": [], **{s: [] for s in SOURCES}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.cost_rounds):
            for label in seconds:
                dense = None if label == "none" else label
                started = time.perf_counter()
                Index.build(docs, Path(tmp) / label, colbert, dense=dense, progress=False,
                            overwrite=True)  # fmt: skip
                seconds[label].append(time.perf_counter() - started)
                shutil.rmtree(Path(tmp) / label)
    median = {label: statistics.median(values) for label, values in seconds.items()}
    return {"docs": args.cost_docs, "seconds": seconds, "median_s": median,
            "ratio": {s: median[s] / median["none"] for s in SOURCES}}  # fmt: skip


# ---------------------------------------------------------------------- quality
def eval_sets(data: Path) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Per collection, the dev sets and the test sets."""
    from latesearch.data import read_qrels, read_queries
    from latesearch.evaluation.datasets import EvalSet

    scifact = common.collection("scifact", data)
    train = read_qrels(data / "scifact" / "qrels" / "train.tsv")
    queries = read_queries(data / "scifact" / "queries.jsonl")
    dev_ids = scifact_dev_ids(train)
    sf_dev = EvalSet({q: queries[q] for q in dev_ids}, {q: train[q] for q in dev_ids},
                     "scifact-dev")  # fmt: skip
    demo_queries = read_queries(common.DEMO / "queries.tsv")
    demo_qrels = read_qrels(common.DEMO / "qrels.txt")
    for line in common.PYDOCS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            qid, question, relevant = line.split("\t")
            demo_queries[qid] = question
            demo_qrels[qid] = {d.strip(): 1 for d in relevant.split(",") if d.strip()}
    demo_dev = EvalSet({q: demo_queries[q] for q in demo_qrels}, demo_qrels, "demo-dev")
    vaswani = common.collection("vaswani", data)
    dev = {"scifact": [sf_dev], "demo": [demo_dev]}
    # the demo's questions have no test split: reported again with latency, after the decision
    test = {"scifact": scifact.eval_sets(), "vaswani": vaswani.eval_sets(), "demo": [demo_dev]}
    return dev, test


def scifact_dev_ids(train: dict[str, Any]) -> list[str]:
    """The 150 training-judgement queries scripts/default_model/make_data.py holds out (its
    seed 0 shuffle of the sorted ids); checked against its output where present."""
    qids = sorted(train)
    random.Random(0).shuffle(qids)
    dev = sorted(qids[:150])
    made = common.REPO / ".work" / "dm" / "data14" / "dev_queries.tsv"
    if made.is_file():
        assert dev == sorted(line.split("\t")[0] for line in made.read_text().splitlines())
    return dev


def corpus_of(name: str, data: Path) -> Path:
    if name == "demo":
        return common.DEMO / "collection.jsonl"
    return common.collection(name, data).corpus


def dense_index(name: str, source: str, colbert: Any, data: Path) -> Any:
    from latesearch import Index

    folder = common.WORK / "fused" / f"{name}-{source}-{colbert.fingerprint()[:12]}"
    if (folder / "manifest.json").is_file():
        return Index.load(folder, colbert)
    print(f"building {folder.name} ...", flush=True)
    return Index.build(corpus_of(name, data), folder, colbert, dense=source, overwrite=True)


def methods(index: Any) -> dict[str, Any]:
    def searching(**options: Any):
        def search(texts: list[str]) -> list[list[tuple[str, float]]]:
            return [common.ranking(h) for h in index.search(texts, k=DEPTH, **options)]

        return search

    out = {"e2e": searching(mode="e2e"), "dense": searching(mode="dense")}
    for w in WEIGHTS:
        out[f"fused zscore w={w}"] = searching(mode="fused", fusion="zscore", hybrid_weight=w)
    out["fused rrf w=0.5"] = searching(mode="fused", fusion="rrf", hybrid_weight=0.5)
    return out


def evaluate(args, colbert, source: str, sets: dict[str, list[Any]], *, latency: bool):
    out = {}
    for name, coll_sets in sets.items():
        index = dense_index(name, source, colbert, args.data)
        sample = list(coll_sets[0].queries.values())[: args.latency_queries if latency else 0]
        rows = {}
        for label, search in methods(index).items():
            print(f"{source} {name}: {label}", flush=True)
            if sample:
                rows[label] = common.measure(search, coll_sets, sample, METRICS)
            else:
                rows[label] = effectiveness(search, coll_sets)
        out[name] = {"sets": {s.name: len(s.queries) for s in coll_sets}, "methods": rows,
                     "dense_bytes": dense_bytes(index)}  # fmt: skip
    return out


def effectiveness(search, sets: list[Any]) -> dict[str, Any]:
    from latesearch.evaluation import evaluate_run
    from latesearch.evaluation.runner import run_queries

    run = run_queries(search, sets[0].queries, batch_size=32).run
    return {"effectiveness": {s.name: evaluate_run(run, s.qrels, METRICS).aggregate
                              for s in sets}}  # fmt: skip


def dense_bytes(index: Any) -> dict[str, Any]:
    total = sum((index.folder / c.dense).stat().st_size for c in index.store.chunks)
    return {"bytes": total, "per_doc": total / len(index), "dim": index.store.manifest.dense_dim}


# ---------------------------------------------------------------------- the rules
def ndcg(rows: dict[str, Any], method: str) -> dict[str, float]:
    """nDCG@10 of `method` on every dev set, by set name."""
    out = {}
    for coll in rows.values():
        for name, values in coll["methods"][method]["effectiveness"].items():
            out[name] = values["nDCG@10"]
    return out


def decide(payload: dict[str, Any]) -> dict[str, Any]:
    dev, ratio = payload["dev"], payload["cost"]["ratio"]
    base = "fused zscore w=0.5"
    means = {s: statistics.mean(ndcg(dev[s], base).values()) for s in SOURCES}
    affordable = [s for s in SOURCES if ratio[s] <= COST_LIMIT]
    source = max(affordable, key=lambda s: means[s]) if affordable else "pooled"
    fused, late = ndcg(dev[source], base), ndcg(dev[source], "e2e")
    gain = statistics.mean(fused.values()) - statistics.mean(late.values())
    worst = min(fused[name] - late[name] for name in fused)
    default = gain >= 0.005 and worst >= -0.01
    choice = {"source": source, "affordable": affordable, "fused_dev_mean": means,
              "gain_over_e2e": gain, "worst_set_change": worst, "default_on": default}
    if default:
        candidates = [f"fused zscore w={w}" for w in WEIGHTS] + ["fused rrf w=0.5"]
        score = {m: statistics.mean(ndcg(dev[source], m).values()) for m in candidates}
        best = max(score.values())
        tied = [m for m in candidates if score[m] >= best - 1e-12]
        choice["method"] = base if base in tied else tied[0]
        choice["method_dev_means"] = score
    return choice


# ---------------------------------------------------------------------- report
def markdown(payload: dict[str, Any]) -> str:
    cost, decision = payload["cost"], payload["decision"]
    lines = [common.header("The dense view and the fused mode", payload["machine"],
                           payload["model"]), ""]  # fmt: skip
    lines += [f"Build cost ({cost['docs']} SciFact documents, median of "
              f"{len(cost['seconds']['none'])} interleaved rounds): without a dense view "
              f"{cost['median_s']['none']:.1f} s; pooled {cost['ratio']['pooled']:.2f}x; "
              f"backbone {cost['ratio']['backbone']:.2f}x (limit {COST_LIMIT}x).", ""]  # fmt: skip
    lines += ["Decision (rules in docs/search.md): source "
              f"**{decision['source']}**; fused (zscore, w 0.5) against e2e on the dev sets: "
              f"{decision['gain_over_e2e']:+.4f} mean nDCG@10, worst set "
              f"{decision['worst_set_change']:+.4f}; default: "
              f"**{'fused' if decision['default_on'] else 'e2e (dense view opt-in)'}**.", ""]
    for stage, title in (("dev", "Dev sets"), ("test", "Test sets")):
        for source, colls in payload[stage].items():
            for name, coll in colls.items():
                sets = list(coll["sets"])
                dense = coll["dense_bytes"]
                head = " | ".join(f"{m} {s}" for s in sets for m in METRICS.split())
                timed = stage == "test"
                lines += ["", f"### {title}: {name}, dense={source} ({dense['dim']}-d, "
                          f"{dense['per_doc']:.0f} bytes a document)", "",
                          f"| method | {head} |" + (" ms median | ms p95 |" if timed else ""),
                          "|---|" + "---:|" * (len(sets) * 2 + (2 if timed else 0))]  # fmt: skip
                for label, row in coll["methods"].items():
                    cells = [f"{row['effectiveness'][s][m]:.4f}" for s in sets
                             for m in METRICS.split()]  # fmt: skip
                    extra = ""
                    if timed:
                        lat = row["latency_ms"]
                        extra = f" {lat['median']:.1f} | {lat['p95']:.1f} |"
                    lines.append(f"| {label} | {' | '.join(cells)} |{extra}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
