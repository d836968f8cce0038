"""`latesearch serve` under concurrent load, against the engine's own batched throughput
measured in the same run.

Parts (each a `latesearch serve` process on 127.0.0.1 over the demo collection, 409
docstrings with their module as metadata; clients are threads of this process, one
keep-alive connection each, sending requests back to back):

- engine: `Index.search` in this process, batches of 32 of the searches-only mix;
  measured before and after the server parts, the mean is the reference;
- searches: `--clients` clients for `--seconds`, searches only (GET e2e, filtered POST,
  GET hybrid; no exact): requests/s as a fraction of the engine's queries/s, p50, p99,
  the time in the server's queue, and Little's law (clients / throughput); then paced:
  the same clients, each starting a request at a fixed interval so that they offer about
  half the rate just measured: p50, p99 below capacity;
- mix: tests/stress/load.py's full mix (every mode, reranks, batches, bad requests) with
  `latesearch update --delete` in the middle: 5xx, connection errors, 4xx, RSS growth;
- overload: `--overload-clients` clients, searches only: what is shed (503) and the
  latency of what is admitted, RSS;
- clients: requests/s and p50 against 1, 2, 4, ... clients for each `--sweep-workers`
  count, the servers measured in turn at each count.

The load average (1 min) is read at the start and end of each part: the machine is
shared and the numbers move with it.

    python benchmarks/load.py --seconds 30

Writes benchmarks/results/load-serve-cpu.json and .md (and a plot with the plot extra).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see load_threads.py

import argparse  # noqa: E402
import http.client  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote_plus  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

STRESS = REPO / "tests" / "stress" / "load.py"
QUERIES = [
    "read a json file",
    "sort a list",
    "open a zip file",
    "parse command line options",
    "random number",
    "current time",
    "regular expression match",
    "copy a file",
    "http request",
    "thread pool",
    "compress data",
    "send an email",
    "format a date",
    "join paths",
    "environment variable",
    "subprocess output",
]
FILTERS = [
    {"module": "json"},
    {"module": {"$in": ["os", "sys", "shutil"]}},
    {"module": {"$ne": "argparse"}},
    {"$or": [{"module": "re"}, {"module": "zipfile"}]},
]


def stress_module() -> Any:
    spec = importlib.util.spec_from_file_location("stress_load", STRESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------- requests
def search_request(rng: random.Random) -> tuple[str, str, str, bytes | None]:
    """(kind, method, path, body) of the searches-only mix: 50% e2e, 25% filtered e2e,
    25% hybrid."""
    q = rng.choice(QUERIES)
    roll = rng.random()
    if roll < 0.5:
        return "e2e", "GET", f"/search?q={quote_plus(q)}&k=10", None
    if roll < 0.75:
        body = json.dumps({"query": q, "k": 10, "filter": rng.choice(FILTERS)}).encode()
        return "filtered", "POST", "/search", body
    return "hybrid", "GET", f"/search?q={quote_plus(q)}&k=10&mode=hybrid", None


def engine_throughput(folder: Path, seconds: float) -> dict[str, Any]:
    """Queries/s of `Index.search` over batches of 32 of the searches-only mix (each
    batch split by kind, as the engine takes one request per call)."""
    import torch

    from latesearch import Index

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    index = Index.load(folder)
    rng = random.Random(7)
    index.search("warm up", k=10)
    index.search("warm up", k=10, mode="hybrid")
    done, started, la = 0, time.perf_counter(), load_average()
    while time.perf_counter() - started < seconds:
        batch = [search_request(rng) for _ in range(32)]
        texts: dict[tuple[str, str], list[str]] = {}  # (mode, filter) -> queries
        for kind, _, path, body in batch:
            if kind == "filtered":
                data = json.loads(body)
                key = ("e2e", json.dumps(data["filter"]))
                texts.setdefault(key, []).append(data["query"])
            else:
                q = path.split("q=")[1].split("&")[0].replace("+", " ")
                texts.setdefault((kind, ""), []).append(q)
        for (mode, spec), part in texts.items():
            index.search(part, k=10, mode=mode, filter=json.loads(spec) if spec else None)
        done += 32
    elapsed = time.perf_counter() - started
    return {"queries_per_second": round(done / elapsed, 1), "load_average": [la, load_average()]}


# ---------------------------------------------------------------------- server
def start_server(folder: Path, *extra: str) -> tuple[subprocess.Popen, str, int]:
    command = [
        sys.executable,
        "-m",
        "latesearch",
        "serve",
        str(folder),
        "--port",
        "0",
        "--quiet",
        *extra,
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    host, port = line.split(" at http://")[1].split()[0].rsplit(":", 1)
    wait_ready(host, int(port))
    return proc, host, int(port)


def wait_ready(host: str, port: int, timeout: float = 300.0) -> None:
    """Until every worker answers: a few searches in a row succeed."""
    deadline, ok = time.monotonic() + timeout, 0
    while ok < 8:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not answer")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", "/search?q=warm+up&k=10&mode=hybrid")
            ok += conn.getresponse().status == 200
            conn.close()
        except OSError:
            time.sleep(0.5)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mib(pid: int) -> float:
    """RSS of the process and its children (the workers)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(p) for p in found]


def run_clients(
    host: str,
    port: int,
    clients: int,
    seconds: float,
    server_pid: int | None = None,
    pace: float | None = None,
) -> dict[str, Any]:
    """`clients` threads sending the searches-only mix for `seconds`: back to back, or
    each starting one request every `pace` seconds (from a random phase; a late answer
    delays the next)."""
    records: list[tuple[str, int, float, float | None]] = []  # kind, status, s, queued s
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng, mine = random.Random(seed), []
        conn = http.client.HTTPConnection(host, port, timeout=120)
        due = time.monotonic() + (rng.random() * pace if pace else 0.0)
        while time.monotonic() < stop:
            if pace:
                time.sleep(max(0.0, due - time.monotonic()))
                due = max(due + pace, time.monotonic())
            kind, method, path, body = search_request(rng)
            headers = {"Content-Type": "application/json"} if body else {}
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                seconds = time.perf_counter() - started
                status, queued = response.status, None
                if status == 200:  # the time it waited in the server's queue
                    queued = json.loads(data)["timings"].get("queued")
                if status == 503:  # a client that respects Retry-After would wait
                    time.sleep(0.05)
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")
                status, seconds, queued = -1, time.perf_counter() - started, None
            mine.append((kind, status, seconds, queued))
        conn.close()
        with lock:
            records.extend(mine)

    la, cpu = load_average(), cpu_seconds(server_pid)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = summarize(records, errors, time.monotonic() - began, clients, [la, load_average()])
    used = {k: round(v - cpu[k], 1) for k, v in cpu_seconds(server_pid).items()}
    return {**row, "cpu_seconds": used, **batches(host, port)}


def cpu_seconds(server_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by the server (and its workers) and by this process."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    server = 0.0 if server_pid is None else sum(of(p) for p in [server_pid, *children(server_pid)])
    return {"server": server, "clients": of(os.getpid())}


def batches(host: str, port: int) -> dict[str, Any]:
    """The server's mean micro-batch so far (from /metrics)."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return {}
    values = dict(
        line.rsplit(" ", 1)
        for line in text.splitlines()
        if line.startswith("latesearch_batch_queries_")
    )
    count = float(values.get("latesearch_batch_queries_count", 0))
    total = float(values.get("latesearch_batch_queries_sum", 0))
    return {"mean_batch_queries": round(total / count, 1) if count else None}


def summarize(records, errors, elapsed, clients, la) -> dict[str, Any]:
    ok = sorted(s * 1000 for _, st, s, _ in records if st == 200)
    queued = sorted(q * 1000 for _, st, _, q in records if st == 200 and q is not None)
    refused = sorted(s * 1000 for _, st, s, _ in records if st in (429, 503))
    statuses: dict[str, int] = {}
    for _, st, _, _ in records:
        statuses[str(st)] = statuses.get(str(st), 0) + 1

    def pct(p: float, values: list[float] = ok) -> float | None:
        return round(values[min(len(values) - 1, int(p * len(values)))], 1) if values else None

    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(records),
        "answered_per_second": round(len(ok) / elapsed, 1),
        "statuses": statuses,
        "connection_errors": len(errors),
        "p50_ms": round(statistics.median(ok), 1) if ok else None,
        "p99_ms": pct(0.99),
        "max_ms": round(ok[-1], 1) if ok else None,
        "queued_p50_ms": pct(0.5, queued),
        "queued_p99_ms": pct(0.99, queued),
        "queued_max_ms": round(queued[-1], 1) if queued else None,
        "refused_p50_ms": pct(0.5, refused),
        "load_average": la,
    }


# ---------------------------------------------------------------------- parts
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "benchmark": "load-serve",
        "command": "python benchmarks/load.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.index) if args.index else stress_module().build_demo(Path(tmp) / "d")
        before = engine_throughput(folder, args.engine_seconds)
        server_flags = list(args.server_args)
        if "searches" in args.parts or "overload" in args.parts:
            proc, host, port = start_server(folder, *server_flags, f"--workers={args.workers}")
            try:
                if "searches" in args.parts:
                    run_clients(host, port, args.clients, min(10.0, args.seconds))  # warm-up
                    result["searches"] = run_clients(
                        host, port, args.clients, args.seconds, proc.pid
                    )
                    # paced: the same clients offering about half the rate just measured
                    rate = result["searches"]["answered_per_second"] / 2
                    pace = args.clients / max(rate, 1e-3)
                    paced = run_clients(host, port, args.clients, args.seconds, proc.pid, pace)
                    result["paced"] = {**paced, "offered_per_second": round(rate, 1)}
                if "overload" in args.parts:
                    rss = rss_mib(proc.pid)
                    over = run_clients(host, port, args.overload_clients, args.seconds, proc.pid)
                    over.update(rss_mib_before=rss, rss_mib_after=rss_mib(proc.pid))
                    result["overload"] = over
            finally:
                stop_server(proc)
        if "clients" in args.parts:
            result["clients"] = sweep(folder, args, server_flags)
        after = engine_throughput(folder, args.engine_seconds)
        engine = round((before["queries_per_second"] + after["queries_per_second"]) / 2, 1)
        result["engine"] = {"before": before, "after": after, "queries_per_second": engine}
        if "searches" in result:
            s = result["searches"]
            s["fraction_of_engine"] = round(s["answered_per_second"] / engine, 2)
            # Little's law: clients sending back to back wait clients / throughput
            s["littles_law_ms"] = round(1000 * s["clients"] / s["answered_per_second"], 1)
        if "mix" in args.parts:
            result["mix"] = full_mix(folder, args, server_flags)
    result["server_flags"] = server_flags
    result["machine"] = machine_info()
    write_results(args.out, "load-serve-cpu", result, markdown(result))
    plot(result, args.out)
    print(markdown(result))
    return result


def sweep(folder: Path, args: argparse.Namespace, flags: list[str]) -> list[dict[str, Any]]:
    """Requests/s against clients for each --workers count: the servers run side by side
    (an idle one costs nothing) and are measured in turn at each client count, so that
    the machine's other work affects them alike."""
    servers = {}
    try:
        for workers in args.sweep_workers:
            servers[workers] = start_server(folder, *flags, f"--workers={workers}")
        rows = []
        for clients in args.sweep_clients:
            for workers, (proc, host, port) in servers.items():
                row = run_clients(host, port, clients, args.sweep_seconds, proc.pid)
                rows.append({"workers": workers, **row})
        return rows
    finally:
        for proc, _, _ in servers.values():
            stop_server(proc)


def full_mix(folder: Path, args: argparse.Namespace, flags: list[str]) -> dict[str, Any]:
    """tests/stress/load.py's mix with an update halfway, against this server."""
    stress = stress_module()
    work = Path(tempfile.mkdtemp())
    copy = work / "index"
    subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)
    proc, host, port = start_server(copy, *flags, f"--workers={args.workers}")
    try:
        options = argparse.Namespace(clients=args.clients)
        stress.load(host, port, copy, options, min(10.0, args.seconds), update=False)
        rss_warm = rss_mib(proc.pid)
        run = stress.load(host, port, copy, options, args.seconds, update=True)
        time.sleep(1.0)
        rss_end = rss_mib(proc.pid)
    finally:
        stop_server(proc)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    options = argparse.Namespace(
        clients=args.clients, seconds=args.seconds, warm_up=min(10.0, args.seconds)
    )
    summary = stress.summarize(run, options, rss_warm, rss_end)
    summary["load_average_end"] = load_average()
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", help="index folder (default: build the demo's)")
    p.add_argument("--parts", nargs="+", default=["searches", "mix", "overload", "clients"])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--overload-clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60.0, help="each part's duration (60)")
    p.add_argument("--engine-seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=1, help="the server's --workers (1)")
    p.add_argument("--sweep-clients", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--sweep-workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sweep-seconds", type=float, default=8.0)
    p.add_argument(
        "--server-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="more `latesearch serve` flags (last)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# `latesearch serve` under load ({describe(r['machine'])})",
        "",
        f"Command: `{r['command']}`; server flags {r['server_flags']}. Demo collection "
        "(409 docs), default model; clients are threads of the benchmark process on the "
        "same machine (they compete with the server for its cores). Load average (1 min) "
        "at the start and end of each part.",
        "",
    ]
    e = r["engine"]
    lines.append(
        f"- engine alone (Index.search, batches of 32 of the searches mix): "
        f"{e['queries_per_second']} queries/s (before {e['before']['queries_per_second']},"
        f" after {e['after']['queries_per_second']}; load {e['before']['load_average']}"
        f" / {e['after']['load_average']})"
    )
    if "searches" in r:
        s = r["searches"]
        lines.append(
            f"- searches only, {s['clients']} clients, {s['seconds']} s: "
            f"{s['answered_per_second']} answered/s = **{s['fraction_of_engine']}x the "
            f"engine**; p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms; statuses "
            f"{s['statuses']}; connection errors {s['connection_errors']}; load "
            f"{s['load_average']}; CPU s {s['cpu_seconds']}; mean batch "
            f"{s.get('mean_batch_queries')} queries; queue wait p50 {s['queued_p50_ms']} "
            f"ms. Little's law: {s['clients']} clients sending back to back / "
            f"{s['answered_per_second']} per second = {s['littles_law_ms']} ms mean latency "
            f"(a p50 under 100 ms needs {s['clients'] * 10} answers per second)"
        )
    if "paced" in r:
        s = r["paced"]
        lines.append(
            f"- paced: {s['clients']} clients each starting a request every "
            f"{s['clients'] / s['offered_per_second']:.2f} s (about half the rate above: "
            f"{s['offered_per_second']} offered per second), {s['seconds']} s: "
            f"{s['answered_per_second']} answered/s; **p50 {s['p50_ms']} ms, p99 "
            f"{s['p99_ms']} ms**; queue wait p50 {s['queued_p50_ms']} ms; statuses "
            f"{s['statuses']}; load {s['load_average']}"
        )
    if "overload" in r:
        o = r["overload"]
        lines.append(
            f"- overload, {o['clients']} clients, {o['seconds']} s: {o['statuses']}; "
            f"{o['answered_per_second']} answered/s; admitted p50 {o['p50_ms']} ms, p99 "
            f"{o['p99_ms']} ms, max {o['max_ms']} ms (of which in the queue: p50 "
            f"{o['queued_p50_ms']}, max {o['queued_max_ms']} ms); refused in p50 "
            f"{o['refused_p50_ms']} ms; connection errors "
            f"{o['connection_errors']}; RSS {o['rss_mib_before']} -> "
            f"{o['rss_mib_after']} MiB; load {o['load_average']}"
        )
    if "mix" in r:
        m = r["mix"]
        lines.append(
            f"- full mix with an update at {m['update'].get('at_seconds')} s (exit "
            f"{m['update'].get('returncode')}), {m['clients']} clients: "
            f"{m['requests_per_second']} requests/s; 5xx {m['server_errors_5xx']}; "
            f"connection errors {m['connection_errors']}; bad requests 4xx "
            f"{m['bad_requests_answered_4xx']} of {m['bad_requests']}; good not 200 "
            f"{m['good_requests_not_200']}; RSS {m['rss_mib_after_warm_up']} -> "
            f"{m['rss_mib_at_end']} MiB ({m['rss_growth']:+.1%}); load at the end "
            f"{m['load_average_end']}"
        )
        lines += ["", "| mix request | count | p50 ms | p99 ms |", "|---|---:|---:|---:|"]
        for kind, k in m["kinds"].items():
            lines.append(f"| {kind} | {k['requests']:,} | {k['p50_ms']} | {k['p99_ms']} |")
    if "clients" in r:
        lines += [
            "",
            "| workers | clients | answered/s | p50 ms | p99 ms | statuses | CPU s "
            "server / clients | load |",
            "|---:|---:|---:|---:|---:|---|---|---|",
        ]
        for row in r["clients"]:
            cpu = row["cpu_seconds"]
            lines.append(
                f"| {row['workers']} | {row['clients']} | {row['answered_per_second']} "
                f"| {row['p50_ms']} | {row['p99_ms']} | {row['statuses']} | "
                f"{cpu['server']} / {cpu['clients']} | {row['load_average']} |"
            )
    lines += ["", "Regenerate with: `python benchmarks/load.py` (see its --help)."]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], out: Path) -> None:
    """Requests/s against clients (load-serve-cpu.png), with the plot extra."""
    if "clients" not in r:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for workers in sorted({row["workers"] for row in r["clients"]}):
        rows = [row for row in r["clients"] if row["workers"] == workers]
        xs, ys = [x["clients"] for x in rows], [x["answered_per_second"] for x in rows]
        ax.plot(xs, ys, "o-", label=f"server, --workers {workers}")
    ax.axhline(r["engine"]["queries_per_second"], color="grey", ls="--", label="engine, batch 32")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("requests answered / s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "load-serve-cpu.png", dpi=120)


if __name__ == "__main__":
    main()
