"""Search speed of this checkout against another one (before/after a change), on the same
index folder.

Each side runs in its own subprocess (benchmarks/_versions_worker.py) importing its own
latesearch (PYTHONPATH = its checkout), loads the index and the model once and encodes the
queries once; then, round after round, every setting (mode x k) is timed on both sides in
turn, the side that goes first alternating, one query per `Index.search` call. Query
encoding is excluded (`encoded=`) when both sides accept it, else included on both.
Modes: "e2e" (the engine on a compressed index, faiss on an uncompressed one), "rerank"
(BM25 top 1000, where the index has bm25/) and "exact"; k 10 and 100.

    python benchmarks/versions.py --baseline /tmp/base --index .work/eval/engine/scifact-... \
        --queries ../shared/data/scifact/queries.jsonl [--limit 100] [--rounds 5]

Reports per setting the median ms per query of each side, the ratio current / baseline,
and the share of queries whose top-k ids agree; with the load average, the machine, the
revisions and the command. Writes benchmarks/results/versions-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, demo_queries, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

WORKER = Path(__file__).resolve().parent / "_versions_worker.py"


def main() -> None:
    args = parse_args()
    queries = read_texts(args.queries)[: args.limit]
    sides = {"baseline": args.baseline.resolve(), "current": REPO}
    load_before = os.getloadavg()
    workers = {name: Worker(path, args, queries) for name, path in sides.items()}
    try:
        exclude = all(w.info["encoded"] for w in workers.values())
        modes = [m for m in args.modes if m != "rerank"
                 or all("bm25" in w.info["components"] for w in workers.values())]  # fmt: skip
        settings = [(mode, k) for mode in modes for k in args.ks]
        times = {(s, n): [] for s in settings for n in sides}
        tops: dict[tuple, dict[str, list]] = {s: {} for s in settings}
        for name in sides:  # warm-up pass, untimed
            for mode, k in settings:
                workers[name].time(mode, k, exclude)
        for r in range(args.rounds):
            for mode, k in settings:
                order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                for name in order:
                    answer = workers[name].time(mode, k, exclude)
                    times[(mode, k), name] += answer["seconds"]
                    tops[mode, k][name] = answer["tops"]
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for w in workers.values():
            w.close()
    rows = [row(s, times, tops[s]) for s in settings]
    payload = {
        "benchmark": "versions",
        "index": str(args.index),
        "queries": {"source": str(args.queries or "demo"), "n": len(queries)},
        "rounds": args.rounds,
        "threads": args.threads,
        "encoding_excluded": exclude,
        "sides": {n: {"checkout": str(p), "revision": revision(p),
                      "latesearch": workers[n].info["latesearch"]}
                  for n, p in sides.items()},  # fmt: skip
        "n_docs": workers["current"].info["n_docs"],
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine_info(),
        "rows": rows,
    }
    write_results(args.out, "versions-cpu", payload, markdown(payload))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, required=True,
                   help="root of the other checkout (its latesearch/ is imported)")  # fmt: skip
    p.add_argument("--index", type=Path, required=True, help="the index folder both search")
    p.add_argument("--model", default="", help="query model (default: the index's)")
    p.add_argument("--queries", type=Path, default=None,
                   help="queries file (TSV, BEIR JSONL, TREC; default: the demo's)")  # fmt: skip
    p.add_argument("--limit", type=int, default=100, help="first N queries (100)")
    p.add_argument("--modes", nargs="+", default=["e2e", "rerank", "exact"])
    p.add_argument("--ks", type=int, nargs="+", default=[10, 100])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads per side (1)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    if not (args.baseline / "latesearch" / "__init__.py").is_file():
        p.error(f"--baseline {args.baseline}: no latesearch/ package there")
    return args


def read_texts(path: Path | None) -> list[str]:
    if path is None:
        return demo_queries()
    from latesearch.data import read_queries

    return list(read_queries(path).values())


class Worker:
    """A worker subprocess importing the latesearch of `checkout`."""

    def __init__(self, checkout: Path, args: argparse.Namespace, queries: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=str(checkout))
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(args.index.resolve()), args.model,
             str(args.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            cwd=tempfile.gettempdir(),
        )  # fmt: skip
        self.send(queries)
        self.info = self.receive()
        found = Path(self.info["latesearch"]).resolve()
        if not found.is_relative_to(checkout):
            self.close()
            raise SystemExit(f"the worker for {checkout} imported {found}")

    def time(self, mode: str, k: int, exclude_encoding: bool) -> dict[str, Any]:
        self.send({"op": "time", "mode": mode, "k": k, "exclude_encoding": exclude_encoding})
        return self.receive()

    def send(self, message: Any) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker exited with {self.proc.wait()} (its stderr is above)")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send({"op": "quit"})
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def row(setting: tuple[str, int], times: dict, tops: dict[str, list]) -> dict[str, Any]:
    mode, k = setting
    base, cur = (1000 * statistics.median(times[setting, n]) for n in ("baseline", "current"))
    same = sum(a == b for a, b in zip(tops["baseline"], tops["current"], strict=True))
    return {"mode": mode, "k": k, "baseline_ms": base, "current_ms": cur,
            "ratio": cur / base, "same_top_k": same / len(tops["current"]),
            "calls_per_side": len(times[setting, "current"])}  # fmt: skip


def revision(checkout: Path) -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(checkout), *argv], capture_output=True,
                              text=True)  # fmt: skip
        return done.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "?"
    return rev + (" (uncommitted changes)" if git("status", "--porcelain", "--", "latesearch")
                  else "")  # fmt: skip


def markdown(p: dict[str, Any]) -> str:
    sides = p["sides"]
    encoding = "excluded (`encoded=`)" if p["encoding_excluded"] else "included on both sides"
    lines = [
        "## Search speed: current checkout against a baseline",
        "",
        f"Machine: {describe(p['machine'])}; {p['threads']} torch thread(s) per side.  ",
        f"Load average: {p['load_average_before'][0]:.2f} before, "
        f"{p['load_average_after'][0]:.2f} after.  ",
        f"Index: `{p['index']}` ({p['n_docs']} documents); {p['queries']['n']} queries from "
        f"{p['queries']['source']}; query encoding {encoding}.  ",
        f"Baseline: {sides['baseline']['revision']} ({sides['baseline']['checkout']}); "
        f"current: {sides['current']['revision']}.",
        "",
        "| mode | k | baseline ms | current ms | current / baseline | same top-k |",
        "|---|---|---|---|---|---|",
    ]
    for r in p["rows"]:
        lines.append(f"| {r['mode']} | {r['k']} | {r['baseline_ms']:.2f} | {r['current_ms']:.2f}"
                     f" | {r['ratio']:.3f} | {r['same_top_k']:.0%} |")  # fmt: skip
    lines += ["", f"Median of {p['rounds']} rounds x {p['queries']['n']} queries per side and "
              "setting, one query per call, the sides alternating which goes first."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
