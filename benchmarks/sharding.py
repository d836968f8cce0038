"""What the Ray path costs on one machine: a distributed build against a local one, and
sharded search (2 and 4 shards, in this process and in Ray actors) against one index of the
same documents.

    python benchmarks/sharding.py [--data ../shared/data] [--docs 1000] [--queries 100] \
        [--workers 2] [--shards 2 4] [--scaling 1 2] [--out benchmarks/results]

SciFact's first --docs documents, the default model, the default index settings (2 bits
with the fp16 tier) plus bm25/. Builds, one at a time, each in this process with a local Ray
cluster of this machine's CPUs started once: one index encoded here; the same encoded by
--workers Ray actors (object store), and through shared files; the sharded indexes
(encoded here). Ray is given
max(--workers, the shards' total) logical CPUs on the machine's 2 cores: every actor
holds one while it lives. Reported: build
docs/s (model loading excluded, Ray start-up included in the Ray build), the coding phase's
seconds (here, or in Ray coder actors through the object store or shared files) and whether
the Ray-built index equals the local one (ids, lengths, vectors to fp16 rounding, codes,
search results). Scaling (--scaling 1 2 ...): the Ray build with each number of actors of
one CPU each, docs/s and efficiency against the smallest count; on a machine with more cores
or GPUs, pass its counts.
Search: every test query, k=10, one query per call, the default mode (the engine), the
systems interleaved query by query after warm-up: one index; each sharded index with its
shards in this process; the same with its shards in Ray actors. Reported: median and p99 ms
(query encoding included: a sharded index encodes once in the router), queries per second
one at a time, queries per second with BATCH queries per call (shards searched in
parallel by Ray actors), overlap@10 with the one index. Writes benchmarks/results/sharding-cpu.json
and .md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, WORK, command, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

STEM = "sharding-cpu"
BATCH = 32  # queries per call in the batched throughput


def main() -> None:
    args = parse_args()
    import numpy as np
    import ray
    import torch

    from latesearch import ColBERT, Index, ShardedIndex
    from latesearch.evaluation.datasets import load_eval_set

    torch.manual_seed(0)
    work = WORK / "sharding"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus = work / "corpus.jsonl"
    source = args.data / "scifact" / "corpus.jsonl"
    with open(source, encoding="utf-8") as f, open(corpus, "w", encoding="utf-8") as out:
        for _, line in zip(range(args.docs), f, strict=False):
            out.write(line)
    queries = list(load_eval_set(args.data / "scifact", None).queries.values())[: args.queries]
    model = ColBERT.from_pretrained(device="cpu")
    # logical CPUs: every encoder actor and every shard actor holds one while it lives
    ray.init(address="local", num_cpus=max(args.workers, sum(args.shards), *args.scaling),
             include_dashboard=False, log_to_driver=False)  # fmt: skip

    builds: dict[str, Any] = {}

    def timed_build(name: str, make) -> Any:
        start = time.perf_counter()
        built = make()
        seconds = time.perf_counter() - start
        builds[name] = {"seconds": round(seconds, 2), "docs_per_s": round(args.docs / seconds, 2)}
        print(f"build {name}: {seconds:.1f} s", flush=True)
        return built

    one = timed_build("one index, encoded here", lambda: Index.build(
        corpus, work / "one", model, bm25=True, progress=False))  # fmt: skip
    ray_built = timed_build(f"one index, {args.workers} Ray actors", lambda: Index.build(
        corpus, work / "ray", model, bm25=True, progress=False, ray="auto",
        ray_workers=args.workers))  # fmt: skip
    ray_shared = timed_build(f"one index, {args.workers} Ray actors, shared files",
                             lambda: Index.build(corpus, work / "ray-shared", model, bm25=True,
                                                 progress=False, ray="auto",
                                                 ray_workers=args.workers,
                                                 ray_transport="shared"))  # fmt: skip
    coding = {name: {"coded_by": index.store.manifest.codec["coded_by"],
                     "assign_and_code_s": index.store.manifest.codec["seconds"]["assign_and_code"]}
              for name, index in (("one index", one), ("Ray, object store", ray_built),
                                  ("Ray, shared files", ray_shared))}  # fmt: skip
    every = np.arange(one.store.n_docs)
    same = {
        "codes": float(np.mean(one.store.vectors.codes(every)[0]
                               == ray_built.store.vectors.codes(every)[0])),
        "ids": list(one.store.doc_ids) == list(ray_built.store.doc_ids),
        "lengths": bool(np.array_equal(one.store.doclens, ray_built.store.doclens)),
        "max_abs_vector_diff": float(np.abs(
            one.store.flat(every)[0].astype(np.float32)
            - ray_built.store.flat(every)[0].astype(np.float32)).max()),  # fmt: skip
        "same_top10": float(np.mean([
            [h.doc_id for h in a] == [h.doc_id for h in b]
            for a, b in zip(one.search(queries, k=10), ray_built.search(queries, k=10),
                            strict=True)])),  # fmt: skip
    }
    scaling = {}
    for w in args.scaling:  # Ray builds with 1..N encoder and coder actors of one CPU each
        timed_build(f"scaling, {w} Ray actors", lambda w=w: Index.build(
            corpus, work / f"scaling-{w}", model, bm25=True, progress=False, ray="auto",
            ray_workers=w, overwrite=True))  # fmt: skip
        scaling[w] = builds.pop(f"scaling, {w} Ray actors")["docs_per_s"]
    base = scaling.get(min(scaling)) if scaling else None
    scaling_rows = {w: {"docs_per_s": v, "efficiency": round(v / (w / min(scaling) * base), 3)}
                    for w, v in scaling.items()}  # fmt: skip
    sharded = {}
    for n in args.shards:
        sharded[n] = timed_build(f"{n} shards, encoded here", lambda n=n: ShardedIndex.build(
            corpus, work / f"shards-{n}", model, n_shards=n, bm25=True, progress=False))

    systems: dict[str, Any] = {"one index": one}
    for n, index in sharded.items():
        systems[f"{n} shards, local"] = index
        systems[f"{n} shards, Ray actors"] = ShardedIndex.load(index.folder, model, ray="auto")
    for system in systems.values():  # warm-up: models, components, actors
        for q in queries[:3]:
            system.search(q, k=10)
    times: dict[str, list[float]] = {name: [] for name in systems}
    tops: dict[str, list[list[str]]] = {name: [] for name in systems}
    names = list(systems)
    for i, q in enumerate(queries):
        for name in names[i % len(names):] + names[: i % len(names)]:
            start = time.perf_counter()
            hits = systems[name].search(q, k=10)
            times[name].append(time.perf_counter() - start)
            tops[name].append([h.doc_id for h in hits])
    batched: dict[str, float] = {}
    for name in names:  # every query, BATCH per call: what a server of queued queries sees
        start = time.perf_counter()
        for b in range(0, len(queries), BATCH):
            systems[name].search(queries[b : b + BATCH], k=10)
        batched[name] = round(len(queries) / (time.perf_counter() - start), 2)
    search = {}
    for name in names:
        ms = sorted(1e3 * t for t in times[name])
        overlap = statistics.mean(len(set(a) & set(b)) / 10
                                  for a, b in zip(tops[name], tops["one index"], strict=True))
        search[name] = {
            "median_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], 2),
            "queries_per_s": round(len(ms) / (sum(ms) / 1e3), 2),
            "queries_per_s_batched": batched[name],
            "overlap10_with_one_index": round(overlap, 3),
        }
    ray.shutdown()
    payload = {"benchmark": "sharding", "machine": machine_info(), "command": command(),
               "docs": args.docs, "queries": len(queries), "workers": args.workers,
               "ray_cpus": max(args.workers, sum(args.shards), *args.scaling), "batch": BATCH,
               "builds": builds, "scaling": scaling_rows, "coding": coding,
               "ray_build_equals_local": same, "search": search}  # fmt: skip
    write_results(args.out, STEM, payload, markdown(payload))


def markdown(r: dict[str, Any]) -> str:
    same = r["ray_build_equals_local"]
    lines = [
        "# Ray builds and sharded search on one machine (CPU)", "",
        f"Machine: {describe(r['machine'])}. SciFact's first {r['docs']} documents, the "
        f"default model, default index settings + bm25/; {r['queries']} test queries, k=10, "
        "one query per call, systems interleaved per query; a local Ray cluster of "
        f"{r['ray_cpus']} logical CPUs on the machine's cores.", "",
        "Command:", "", f"    {r['command']}", "",
        "## Builds", "", "| build | seconds | docs/s |", "|---|---:|---:|",
        *[f"| {name} | {b['seconds']} | {b['docs_per_s']} |" for name, b in r["builds"].items()],
        "",
        f"The Ray-built index (object store) equals the local one: ids {same['ids']}, "
        f"lengths {same['lengths']}, largest vector difference "
        f"{same['max_abs_vector_diff']:.2g} (fp16 rounding), {same['codes']:.2%} of the "
        f"centroid codes, same top 10 for {same['same_top10']:.0%} of the queries.", "",
        *_scaling(r.get("scaling") or {}),
        "Coding (centroid assignment and residuals, after the centroids are trained):", "",
        "| build | coded by | seconds |", "|---|---|---:|",
        *[f"| {name} | {c['coded_by']} | {c['assign_and_code_s']} |"
          for name, c in r["coding"].items()],
        "",
        "## Search", "",
        "| system | median ms | p99 ms | queries/s (one at a time) | queries/s "
        f"({r['batch']} per call) | overlap@10 with one index |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {name} | {s['median_ms']} | {s['p99_ms']} | {s['queries_per_s']} | "
          f"{s['queries_per_s_batched']} | {s['overlap10_with_one_index']:.3f} |"
          for name, s in r["search"].items()],
        "",
        "Times include query encoding (once per query in a sharded index's router). Each "
        "shard is searched with the engine's defaults as a whole index would be, so a "
        "sharded index scores more candidates than one index and may find documents the "
        "one index's engine misses (overlap below 1 either way).", "",
    ]  # fmt: skip
    return "\n".join(lines)


def _scaling(rows: dict[str, Any]) -> list[str]:
    if not rows:
        return []
    return ["Scaling of a Ray build (each actor one CPU; efficiency = docs/s over the "
            "smallest run's docs/s times the ratio of actors):", "",
            "| Ray actors | docs/s | efficiency |", "|---:|---:|---:|",
            *[f"| {w} | {x['docs_per_s']} | {x['efficiency']:.2f} |" for w, x in rows.items()],
            ""]  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--docs", type=int, default=1000, help="SciFact documents (1000)")
    p.add_argument("--queries", type=int, default=100, help="test queries timed (100)")
    p.add_argument("--workers", type=int, default=2, help="Ray CPUs and encoder actors (2)")
    p.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    p.add_argument("--scaling", type=int, nargs="*", default=[1, 2],
                   help="Ray actor counts of the scaling builds (1 2; none: skip)")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args()


if __name__ == "__main__":
    main()
