"""What `latesearch serve` adds to a query's latency: the same queries searched directly
(`Index.search`) and through the HTTP JSON API on localhost (one keep-alive connection),
alternating query by query so that a noisy machine affects both alike.

The index is the demo collection's (409 Python docstrings, built here with the default
model unless --index is given); the queries are the demo's 20 plus the 108 questions of
`scripts/default_model/data/pydocs-dev.tsv`.

    python benchmarks/serve.py --repeats 3

Writes benchmarks/results/serve-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEMO, RESULTS, demo_queries, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=None, help="index folder (default: build demo)")
    p.add_argument("--modes", nargs="+", default=["e2e", "rerank"], help="search modes")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="passes over the queries per mode")
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(1000 * statistics.median(ordered), 3),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 3),
            "mean_ms": round(1000 * statistics.fmean(ordered), 3)}  # fmt: skip


def measure(index: Any, conn: http.client.HTTPConnection, queries: list[str], mode: str,
            k: int, repeats: int) -> tuple[list[float], list[float], int]:  # fmt: skip
    """Per-query seconds, direct and over HTTP, and how many answers differed."""
    direct, served, mismatches = [], [], 0
    for repeat in range(repeats):
        for n, query in enumerate(queries):
            first_direct = (n + repeat) % 2 == 0
            for way in ("direct", "http") if first_direct else ("http", "direct"):
                start = time.perf_counter()
                if way == "direct":
                    ids = [h.doc_id for h in index.search(query, k=k, mode=mode)]
                    direct.append(time.perf_counter() - start)
                else:
                    conn.request("GET", f"/search?q={quote_plus(query)}&k={k}&mode={mode}")
                    body = json.loads(conn.getresponse().read())
                    served.append(time.perf_counter() - start)
                    got = [h["doc_id"] for h in body["hits"]]
            mismatches += got != ids
    return direct, served, mismatches


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from latesearch import Index
    from latesearch.serving import RunningServer, SearchService, ServeConfig

    args = parse_args(argv)
    queries = demo_queries()
    with tempfile.TemporaryDirectory() as tmp:
        if args.index is None:
            index = Index.build(DEMO / "collection.jsonl", Path(tmp) / "demo", bm25=True,
                                progress=False, device=args.device)  # fmt: skip
        else:
            index = Index.load(args.index, device=args.device)
        service = SearchService(index, ServeConfig(max_k=max(1000, args.k)))
        service.warm_up()
        server = RunningServer(service, port=0, quiet=True).start()
        host, port = server.socket.getsockname()[:2]
        conn = http.client.HTTPConnection(host, port, timeout=60)
        rows = []
        try:
            for mode in args.modes:
                measure(index, conn, queries[:5], mode, args.k, 1)  # warm-up, untimed
                direct, served, mismatches = measure(index, conn, queries, mode, args.k,
                                                     args.repeats)  # fmt: skip
                d, s = summarize(direct), summarize(served)
                rows.append({
                    "mode": mode, "queries": len(direct), "direct": d, "http": s,
                    "overhead_median_ms": round(s["median_ms"] - d["median_ms"], 3),
                    "ratio_median": round(s["median_ms"] / d["median_ms"], 3),
                    "answers_differing": mismatches,
                })  # fmt: skip
                print(f"{mode}: direct {d['median_ms']} ms, http {s['median_ms']} ms")
        finally:
            conn.close()
            server.stop()
    info = machine_info()
    result = {"benchmark": "serve", "machine": info, "index": str(args.index or "demo"),
              "k": args.k, "repeats": args.repeats, "rows": rows}  # fmt: skip
    lines = [
        f"# Search latency through `latesearch serve` ({describe(info)})", "",
        f"{len(queries)} queries (the demo's 20 and the 108 pydocs questions) x {args.repeats} "
        f"passes, k={args.k}, over the {'demo collection (409 docstrings)' if args.index is None else args.index}; "  # noqa: E501
        "direct `Index.search` and HTTP GET on localhost (one keep-alive connection), "
        "alternating per query. Median / p95 per query.", "",
        "| mode | direct median ms | direct p95 ms | HTTP median ms | HTTP p95 ms | overhead ms | ratio | answers differing |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['direct']['median_ms']} | {r['direct']['p95_ms']} | "
                     f"{r['http']['median_ms']} | {r['http']['p95_ms']} | "
                     f"{r['overhead_median_ms']} | {r['ratio_median']}x | "
                     f"{r['answers_differing']} |")  # fmt: skip
    device = "gpu" if info.get("gpu") else "cpu"
    write_results(args.out, f"serve-{device}", result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
