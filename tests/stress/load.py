"""`latesearch serve` under load: many concurrent clients for a fixed time, mixing
searches (GET and POST batches, every mode, filtered by metadata), reranks and bad
requests, while another
process publishes an update of the index in the middle of the run.

The server is a separate `latesearch serve` process on 127.0.0.1 over the demo
collection (409 docstrings, each with its module as metadata, built here with the default
model unless --index is given).
Each client thread keeps one HTTP/1.1 connection (a new one after the server closes it)
and sends requests back to back. Reported: requests/s, status counts, 5xx and connection
errors, whether every bad request got a 4xx, p50/p99 latency per request kind, and the
server's RSS after warm-up and at the end.

    python tests/stress/load.py --clients 50 --seconds 60

Writes benchmarks/results/load-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import REPO, RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

DEMO = REPO / "latesearch" / "resources" / "demo"
QUERIES = ["read a json file", "sort a list", "open a zip file", "parse command line options",
           "random number", "current time", "regular expression match", "copy a file",
           "http request", "thread pool"]  # fmt: skip
FILTERS = [{"module": "json"}, {"module": {"$in": ["os", "sys", "shutil"]}},
           {"module": {"$ne": "argparse"}}, {"$or": [{"module": "re"}, {"module": "zipfile"}]}]
BAD = [  # (method, path, body): each must get a 4xx
    ("GET", "/search?q=x&k=0", None),
    ("GET", "/search?k=5", None),
    ("GET", "/search?q=x&mode=fast", None),
    ("POST", "/search", b"{not json"),
    ("POST", "/search", json.dumps({"query": "x", "top": 3}).encode()),
    ("POST", "/rerank", json.dumps({"query": "x", "candidates": "json.load"}).encode()),
    ("POST", "/documents/delete", json.dumps({"ids": ["json.load"]}).encode()),  # no key
    ("POST", "/search", json.dumps({"query": "x", "filter": {"module": {"$regex": "j"}}})
     .encode()),  # fmt: skip
    ("GET", "/nowhere", None),
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.index) if args.index else build_demo(Path(tmp) / "demo")
        server, url = start_server(folder)
        try:
            host, port = url.split("//")[1].rsplit(":", 1)
            warm_up(host, int(port))
            load(host, int(port), folder, args, args.warm_up, update=False)
            rss_warm = rss_mib(server.pid)
            run = load(host, int(port), folder, args, args.seconds, update=True)
            time.sleep(1.0)
            rss_end = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    result = summarize(run, args, rss_warm, rss_end)
    result["machine"] = machine_info()
    write_results(args.out, "load-cpu", result, markdown(result))
    print(markdown(result))
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", help="index folder (default: build the demo's)")
    p.add_argument("--clients", type=int, default=50, help="concurrent client threads (50)")
    p.add_argument("--seconds", type=float, default=60.0, help="duration of the run (60)")
    p.add_argument("--warm-up", type=float, default=15.0,
                   help="seconds of the same load before the run, after which RSS is read (15)")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def build_demo(folder: Path) -> Path:
    """The demo collection, each docstring given its module as metadata (`json.load` ->
    `{"module": "json"}`) for the filtered searches."""
    from latesearch import Index
    from latesearch.data import read_collection

    docs = [{"_id": d.doc_id, "title": d.title, "text": d.text,
             "module": d.doc_id.split(".")[0]}
            for d in read_collection(DEMO / "collection.jsonl")]  # fmt: skip
    Index.build(docs, folder, bm25=True, progress=False)
    return folder


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "latesearch", "serve", str(folder), "--port", "0",
               "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, line.split(" at ")[1].split()[0]


def warm_up(host: str, port: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    for mode in ("e2e", "rerank", "exact") * 5:
        conn.request("GET", f"/search?q=warm+up&k=10&mode={mode}")
        conn.getresponse().read()
    conn.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def request_for(rng: random.Random) -> tuple[str, str, str, bytes | None]:
    """(kind, method, path, body) of one request, drawn from the mix."""
    q = rng.choice(QUERIES)
    roll = rng.random()
    if roll < 0.35:
        mode = rng.choice(("e2e", "e2e", "rerank", "exact", "hybrid"))
        return f"search-{mode}", "GET", f"/search?q={quote_plus(q)}&k=10&mode={mode}", None
    if roll < 0.45:
        spec = rng.choice(FILTERS)
        body = json.dumps({"query": q, "k": 10, "filter": spec, "return_metadata": True})
        return "filtered-search", "POST", "/search", body.encode()
    if roll < 0.65:
        body = json.dumps({"queries": rng.sample(QUERIES, 4), "k": 10}).encode()
        return "batch-search", "POST", "/search", body
    if roll < 0.80:
        body = json.dumps({"query": q, "candidates": ["json.load", "json.dump", "os.listdir",
                                                      "zipfile.ZipFile"],  # fmt: skip
                           "missing": "skip"}).encode()
        return "rerank", "POST", "/rerank", body
    method, path, body = rng.choice(BAD)
    return "bad", method, path, body


def load(host: str, port: int, folder: Path, args: argparse.Namespace, seconds: float,
         *, update: bool) -> dict[str, Any]:  # fmt: skip
    """`args.clients` clients for `seconds`; with `update`, an update halfway through."""
    records: list[tuple[str, int, float]] = []  # (kind, status or -1, seconds)
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(host, port, timeout=120)
        mine = []
        while time.monotonic() < stop:
            kind, method, path, body = request_for(rng)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                with lock:
                    errors.append(f"{kind}: {type(err).__name__}: {err}")
                status = -1
            mine.append((kind, status, time.perf_counter() - start))
        conn.close()
        with lock:
            records.extend(mine)

    published: dict[str, Any] = {}

    def updater() -> None:
        time.sleep(seconds / 2)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "latesearch", "update", str(folder), "--delete",
             "json.load", "--skip-missing"],
            capture_output=True, text=True,
        )  # fmt: skip
        published.update(returncode=done.returncode, at_seconds=round(seconds / 2, 1),
                         seconds=round(time.monotonic() - started, 1),
                         stderr=done.stderr[-500:])  # fmt: skip

    threads = [threading.Thread(target=client, args=(n + 1000 * update,))
               for n in range(args.clients)]  # fmt: skip
    if update:
        threads.append(threading.Thread(target=updater))
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"records": records, "errors": errors, "update": published,
            "elapsed": time.monotonic() - began}  # fmt: skip


def summarize(run: dict[str, Any], args: argparse.Namespace, rss_warm: float,
              rss_end: float) -> dict[str, Any]:  # fmt: skip
    records = run["records"]
    statuses: dict[str, int] = {}
    for _, status, _ in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    kinds: dict[str, Any] = {}
    for kind in sorted({k for k, _, _ in records}):
        times = sorted(s * 1000 for k, st, s in records if k == kind and st != -1)
        kinds[kind] = {
            "requests": len(times),
            "p50_ms": round(statistics.median(times), 1) if times else None,
            "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1)
            if times else None,
        }  # fmt: skip
    bad = [st for k, st, _ in records if k == "bad"]
    return {
        "benchmark": "load",
        "clients": args.clients,
        "seconds": args.seconds,
        "warm_up_seconds": args.warm_up,
        "requests": len(records),
        "requests_per_second": round(len(records) / run["elapsed"], 1),
        "statuses": statuses,
        "server_errors_5xx": sum(1 for _, st, _ in records if st >= 500),
        "connection_errors": len(run["errors"]),
        "connection_error_samples": run["errors"][:5],
        "bad_requests": len(bad),
        "bad_requests_answered_4xx": sum(1 for st in bad if 400 <= st < 500),
        "good_requests_not_200": sum(1 for k, st, _ in records if k != "bad" and st != 200),
        "kinds": kinds,
        "update": run["update"],
        "rss_mib_after_warm_up": rss_warm,
        "rss_mib_at_end": rss_end,
        "rss_growth": round(rss_end / rss_warm - 1, 3),
    }


def markdown(r: dict[str, Any]) -> str:
    u = r["update"]
    lines = [
        f"# `latesearch serve` under load ({describe(r['machine'])})", "",
        f"{r['clients']} client threads for {r['seconds']:.0f} s (after "
        f"{r['warm_up_seconds']:.0f} s of the same load as warm-up) against a `latesearch serve` "
        "process on 127.0.0.1 (demo collection, default model, FastAPI + uvicorn), one "
        "keep-alive connection per client. Mix: 35% GET /search (e2e, rerank, exact, hybrid), "
        "10% filtered POST /search (metadata `module`, 4 filters), 20% POST /search batches "
        "of 4, 15% POST /rerank, 20% bad requests (9 kinds). At "
        f"{u.get('at_seconds')} s another process ran `latesearch update --delete` "
        f"(exit {u.get('returncode')}, {u.get('seconds')} s).", "",
        f"- requests: {r['requests']:,} ({r['requests_per_second']} per second); statuses "
        f"{r['statuses']}",
        f"- 5xx: {r['server_errors_5xx']}; connection errors: {r['connection_errors']}; "
        f"good requests not answered 200: {r['good_requests_not_200']}",
        f"- bad requests answered 4xx: {r['bad_requests_answered_4xx']} of {r['bad_requests']}",
        f"- server RSS: {r['rss_mib_after_warm_up']} MiB after warm-up, "
        f"{r['rss_mib_at_end']} MiB at the end ({r['rss_growth']:+.1%})", "",
        "| request | count | p50 ms | p99 ms |", "|---|---:|---:|---:|",
    ]  # fmt: skip
    for kind, k in r["kinds"].items():
        lines.append(f"| {kind} | {k['requests']:,} | {k['p50_ms']} | {k['p99_ms']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
