"""First-time metadata filters on a 1M-document doc store, with and without field indexes.

A doc store (`docs.sqlite`, the SQLite file of an index) of --docs (1,000,000) synthetic
documents, a short text each, whose metadata carry fields of known selectivity, spread
uniformly by multiplicative hashing of the document number: `p10` (10 values), `p1` (100),
`p01` (1,000), plus `lang`, `year` and a `tags` list as padding. The same file is copied
and given field indexes on p10, p1 and p01 (`DocStoreWriter.index_fields`, what
`IndexConfig.filter_fields` and `Index.create_field_index` do), timed.

Each filter is timed first-time: a new process opens the doc store and evaluates it once
(`DocStore.matching`; the process's filter cache and SQLite's page cache are empty; the
operating system's file cache is warm, as on a serving machine). Variants and filters are
interleaved, --repeats times each; medians reported, and every run's matches must agree.

    python benchmarks/filters_scale.py [--docs 1000000] [--repeats 3]

Writes benchmarks/results/filters-scale-cpu.json and .md.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

FIELDS = ["p10", "p1", "p01"]
FILTERS = {
    "10% (equality)": {"p10": 3},
    "1% (equality)": {"p1": 7},
    "1% (range)": {"p01": {"$gte": 100, "$lt": 110}},
    "0.1% (equality)": {"p01": 123},
    "1% (indexed and not)": {"p1": 7, "lang": {"$ne": "xx"}},
}
TIMER = """
import json, sys, time
from pathlib import Path
from latesearch.indexing.docstore import DocStore
started = time.perf_counter()
store = DocStore(Path(sys.argv[1]))
opened = time.perf_counter()
found = store.matching(json.loads(sys.argv[2]))
done = time.perf_counter()
print(json.dumps({"open_ms": (opened - started) * 1e3, "filter_ms": (done - opened) * 1e3,
                  "matches": int(found.size), "checksum": int(found.sum())}))
"""


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=1_000_000, help="documents (1,000,000)")
    p.add_argument("--repeats", type=int, default=3, help="first-time runs per filter (3)")
    args = p.parse_args()
    folder = common.WORK / "filters_scale"
    plain, indexed = folder / "plain.sqlite", folder / "indexed.sqlite"
    build_seconds = build(plain, args.docs)
    shutil.copyfile(plain, indexed)
    index_seconds = add_indexes(indexed)
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        label: {"scan": [], "field index": []} for label in FILTERS}  # fmt: skip
    for _ in range(args.repeats):
        for label, spec in FILTERS.items():
            for variant, path in (("scan", plain), ("field index", indexed)):
                runs[label][variant].append(first_time(path, spec))
    rows = {label: summary(spec, runs[label]) for label, spec in FILTERS.items()}
    payload = {
        "benchmark": "filters_scale", "machine": common.machine_info(),
        "documents": args.docs, "synthetic": True, "repeats": args.repeats,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "build_seconds": build_seconds, "field_index_seconds": index_seconds,
        "bytes": {"scan": plain.stat().st_size, "field index": indexed.stat().st_size},
        "indexed_fields": FIELDS, "rows": rows,
    }  # fmt: skip
    common.write_results(args.out, "filters-scale-cpu", payload, markdown(payload))
    print(markdown(payload))


def metadata(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"p10": (i * 7919) % 10, "p1": (i * 104729) % 100,
                            "p01": (i * 15485863) % 1000, "lang": ["en", "de", "fr", "es"][i % 4],
                            "year": 1990 + (i * 31) % 35}  # fmt: skip
    if i % 3 == 0:
        meta["tags"] = ["ml", "ir"] if i % 2 else ["bio"]
    return meta


def build(path: Path, n_docs: int, batch: int = 50_000) -> float:
    """The synthetic doc store at `path` (reused when it holds `n_docs` documents)."""
    from latesearch.indexing.docstore import DocStoreWriter, metadata_json

    if path.is_file():
        writer = DocStoreWriter(path)
        complete = writer.count() == n_docs
        writer.close()
        if complete:
            return 0.0
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    writer = DocStoreWriter(path)
    for start in range(0, n_docs, batch):
        ids = range(start, min(start + batch, n_docs))
        writer.add(start, ((f"doc{i}", "", f"synthetic passage number {i} of the scale test",
                            metadata_json(f"doc{i}", metadata(i))) for i in ids))  # fmt: skip
    writer.close()
    return round(time.perf_counter() - started, 1)


def add_indexes(path: Path) -> float:
    from latesearch.indexing.docstore import DocStoreWriter

    started = time.perf_counter()
    writer = DocStoreWriter(path)
    writer.index_fields(FIELDS)
    writer.close()
    return round(time.perf_counter() - started, 1)


def first_time(path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One filter evaluated once by a new process."""
    env = {**os.environ, "PYTHONPATH": str(common.REPO)}
    out = subprocess.run([sys.executable, "-c", TIMER, str(path), json.dumps(spec)], env=env,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def summary(spec: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    answers = {(r["matches"], r["checksum"]) for rs in runs.values() for r in rs}
    if len(answers) != 1:
        raise SystemExit(f"{spec}: the variants disagree: {answers}")
    row: dict[str, Any] = {"filter": spec, "matches": next(iter(answers))[0]}
    for variant, rs in runs.items():
        times = [r["filter_ms"] for r in rs]
        row[variant] = {
            "median_ms": round(statistics.median(times), 2),
            "runs_ms": [round(t, 2) for t in times],
            "open_ms": round(statistics.median(r["open_ms"] for r in rs), 2),
        }
    row["speedup"] = round(row["scan"]["median_ms"] / row["field index"]["median_ms"], 1)
    return row


def markdown(payload: dict[str, Any]) -> str:
    n = payload["documents"]
    load = payload["load_average"]
    mib = {k: v / 2**20 for k, v in payload["bytes"].items()}
    lines = [
        common.header(
            f"First-time metadata filters on {n:,} synthetic documents",
            payload["machine"],
            "none (doc store only)",
        ),  # fmt: skip
        f"A doc store of {n:,} **synthetic** documents (short texts; metadata fields `p10`, "
        "`p1`, `p01` of 10, 100 and 1,000 uniformly spread values, plus `lang`, `year`, "
        "`tags`). Each filter evaluated once by a new process (no filter cache, cold SQLite "
        f"page cache, warm OS file cache); median of {payload['repeats']} interleaved runs. "
        f"Field indexes on {', '.join(payload['indexed_fields'])}: built in "
        f"{payload['field_index_seconds']} s, file {mib['scan']:.0f} MiB -> "
        f"{mib['field index']:.0f} MiB. Load average before / after: "
        f"{load['before'][0]:.2f} / {load['after'][0]:.2f}.",
        "",
        "| filter | matches | scan (ms) | field index (ms) | speedup |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in payload["rows"].items():
        lines.append(f"| {label}: `{json.dumps(row['filter'])}` | {row['matches']:,} | "
                     f"{row['scan']['median_ms']:.1f} | {row['field index']['median_ms']:.1f} | "
                     f"{row['speedup']}x |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
