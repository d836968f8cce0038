"""What the Ray path costs on one machine: a distributed build against a local one, and
sharded search (2 and 4 shards, in this process and in Ray actors) against one index of the
same documents.

    python benchmarks/sharding.py [--data ../shared/data] [--docs 1000] [--queries 100] \
        [--workers 2] [--shards 2 4] [--out benchmarks/results]

SciFact's first --docs documents, the default model, the default index settings (2 bits
with the fp16 tier) plus bm25/. Builds, one at a time, each in this process with a local Ray
cluster of this machine's CPUs started once: one index encoded here; the same encoded by
--workers Ray actors (object store); the sharded indexes (encoded here). Ray is given
max(--workers, the shards' total) logical CPUs on the machine's 2 cores: every actor
holds one while it lives. Reported: build
docs/s (model loading excluded, Ray start-up included in the Ray build) and whether the
Ray-built index equals the local one (ids, lengths, vectors to fp16 rounding, search results).
Search: every test query, k=10, one query per call, the default mode (the engine), the
systems interleaved query by query after warm-up: one index; each sharded index with its
shards in this process; the same with its shards in Ray actors. Reported: median and p99 ms
(query encoding included: a sharded index encodes once in the router), queries per second
one at a time, overlap@10 with the one index. Writes benchmarks/results/sharding-cpu.json
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
    ray.init(address="local", num_cpus=max(args.workers, sum(args.shards)),
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
    every = np.arange(one.store.n_docs)
    same = {
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
    search = {}
    for name in names:
        ms = sorted(1e3 * t for t in times[name])
        overlap = statistics.mean(len(set(a) & set(b)) / 10
                                  for a, b in zip(tops[name], tops["one index"], strict=True))
        search[name] = {
            "median_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], 2),
            "queries_per_s": round(len(ms) / (sum(ms) / 1e3), 2),
            "overlap10_with_one_index": round(overlap, 3),
        }
    ray.shutdown()
    payload = {"benchmark": "sharding", "machine": machine_info(), "command": command(),
               "docs": args.docs, "queries": len(queries), "workers": args.workers,
               "builds": builds, "ray_build_equals_local": same, "search": search}  # fmt: skip
    write_results(args.out, STEM, payload, markdown(payload))


def markdown(r: dict[str, Any]) -> str:
    same = r["ray_build_equals_local"]
    lines = [
        "# Ray builds and sharded search on one machine (CPU)", "",
        f"Machine: {describe(r['machine'])}. SciFact's first {r['docs']} documents, the "
        f"default model, default index settings + bm25/; {r['queries']} test queries, k=10, "
        "one query per call, systems interleaved per query; a local Ray cluster of "
        f"{r['workers']} CPUs.", "",
        "Command:", "", f"    {r['command']}", "",
        "## Builds", "", "| build | seconds | docs/s |", "|---|---:|---:|",
        *[f"| {name} | {b['seconds']} | {b['docs_per_s']} |" for name, b in r["builds"].items()],
        "",
        f"The Ray-built index equals the local one: ids {same['ids']}, lengths "
        f"{same['lengths']}, largest vector difference {same['max_abs_vector_diff']:.2g} "
        f"(fp16 rounding), same top 10 for {same['same_top10']:.0%} of the queries.", "",
        "## Search", "",
        "| system | median ms | p99 ms | queries/s (one at a time) | overlap@10 with one index |",
        "|---|---:|---:|---:|---:|",
        *[f"| {name} | {s['median_ms']} | {s['p99_ms']} | {s['queries_per_s']} | "
          f"{s['overlap10_with_one_index']:.3f} |" for name, s in r["search"].items()],
        "",
        "Times include query encoding (once per query in a sharded index's router). Each "
        "shard is searched with the engine's defaults as a whole index would be, so a "
        "sharded index scores more candidates than one index and may find documents the "
        "one index's engine misses (overlap below 1 either way).", "",
    ]  # fmt: skip
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--docs", type=int, default=1000, help="SciFact documents (1000)")
    p.add_argument("--queries", type=int, default=100, help="test queries timed (100)")
    p.add_argument("--workers", type=int, default=2, help="Ray CPUs and encoder actors (2)")
    p.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args()


if __name__ == "__main__":
    main()
