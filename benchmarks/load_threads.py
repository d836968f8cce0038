"""The thread policy of a search process: OpenMP's wait policy (torch's default, where
idle threads spin, or PASSIVE, where they sleep) and intra-op threads (1 or all cores),
measured on an otherwise idle machine and with busy processes on every core.

Each setting runs in a fresh process (OpenMP reads its policy when torch loads it):
single-query e2e searches of the demo index, one at a time, and batches of 32. Settings
and background alternate; the load average is recorded with each.

    python benchmarks/load_threads.py --index /path/to/demo-index

Writes benchmarks/results/load-threads-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402
from load import QUERIES as LOAD_QUERIES  # noqa: E402

QUERIES = LOAD_QUERIES[:8]  # the load benchmark's searches

PROBE = """
import json, statistics, sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
from latesearch import Index
index = Index.load(sys.argv[1])
queries = json.loads(sys.argv[3])
for q in queries[:3]:
    index.search(q, k=10)
single = []
for _ in range(3):
    for q in queries:
        t = time.perf_counter(); index.search(q, k=10); single.append(time.perf_counter() - t)
batch = []
for _ in range(3):
    t = time.perf_counter(); index.search(queries * 4, k=10); batch.append(time.perf_counter() - t)
print(json.dumps({"single_ms": statistics.median(single) * 1000,
                  "single_p90_ms": sorted(single)[int(0.9 * len(single))] * 1000,
                  "batch32_qps": 32 / statistics.median(batch)}))
"""


def spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def probe(folder: Path, policy: str | None, threads: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), str(threads), json.dumps(QUERIES)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", help="demo index folder (default: build it)")
    p.add_argument("--busy", type=int, default=0, help="busy processes (0: one per core)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    busy = args.busy or cores
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.index) if args.index else build(Path(tmp) / "demo")
        for background in ("idle", "busy"):
            hogs = []
            if background == "busy":
                stop_at = time.time() + 3600
                hogs = [
                    multiprocessing.Process(target=spin, args=(stop_at,), daemon=True)
                    for _ in range(busy)
                ]
                for hog in hogs:
                    hog.start()
                time.sleep(2)
            try:
                for policy in (None, "PASSIVE"):
                    for threads in (1, cores):
                        la = round(os.getloadavg()[0], 2)
                        found = probe(folder, policy, threads)
                        rows.append(
                            {
                                "background": background,
                                "wait_policy": policy or "default (spin)",
                                "threads": threads,
                                "load_average": la,
                                **{k: round(v, 1) for k, v in found.items()},
                            }
                        )
                        print(rows[-1], flush=True)
            finally:
                for hog in hogs:
                    hog.terminate()
    result = {
        "benchmark": "load-threads",
        "cores": cores,
        "busy_processes": busy,
        "rows": rows,
        "machine": machine_info(),
    }
    write_results(args.out, "load-threads-cpu", result, markdown(result))
    print(markdown(result))
    return result


def build(folder: Path) -> Path:
    import importlib.util

    stress = Path(__file__).resolve().parents[1] / "tests" / "stress" / "load.py"
    spec = importlib.util.spec_from_file_location("stress_load", stress)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_demo(folder)


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Thread policy of a search process ({describe(r['machine'])})",
        "",
        "Demo index, default model, e2e, k=10; each row a fresh process. 'busy': "
        f"{r['busy_processes']} spinning processes on the {r['cores']} cores (plus "
        "whatever else the shared machine ran: see the load average).",
        "",
        "| background | OpenMP wait policy | intra-op threads | load avg | one query, "
        "median ms | p90 ms | batch of 32, queries/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['background']} | {row['wait_policy']} | {row['threads']} | "
            f"{row['load_average']} | {row['single_ms']} | {row['single_p90_ms']} | "
            f"{row['batch32_qps']} |"
        )
    lines += ["", "Regenerate with: `python benchmarks/load_threads.py`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
