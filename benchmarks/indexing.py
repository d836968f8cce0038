"""Indexing throughput as the paper's Figure 7: documents/s and bytes/document with each
optimization switched on in turn, on one subset of a real collection, in one run.

    python benchmarks/indexing.py --collection ../shared/data/scifact --limit 800
    python benchmarks/indexing.py --collection ../shared/data/scifact --limit 0   # all

Variants (cumulative): baseline (collection order, tokenization inline before encoding,
32-bit storage); + length bucketing; + parallel tokenization (worker threads overlapping
with encoding); + half-precision storage (all four in the paper's uncompressed format). Then,
on top, bfloat16 autocast compute, and the compressed format (the default: 2-bit residuals,
with and without the fp16 tier; its build includes k-means and coding).
Each variant is a full `build_index` (encoding, chunk files, SQLite, manifest) of the same
documents with the same loaded model; rounds are interleaved so load drifts hit all
variants alike, and the median is kept. Also: `Index.load` time and RSS growth on an
existing index, and PyLate's encoder on the same documents (as a ratio) when it imports.
Writes benchmarks/results/indexing-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(1, str(ROOT))

from _common import write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

_PAPER = {"nbits": None}  # the paper's uncompressed store: the first five variants
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("baseline", {**_PAPER, "length_bucketing": False, "tokenizer_workers": 0, "precision": 32}),
    ("+ length bucketing", {**_PAPER, "length_bucketing": True, "tokenizer_workers": 0,
                            "precision": 32}),  # fmt: skip
    ("+ parallel tokenization", {**_PAPER, "length_bucketing": True, "precision": 32}),
    ("+ half-precision storage", {**_PAPER, "length_bucketing": True, "precision": 16}),
    ("+ bfloat16 compute", {**_PAPER, "length_bucketing": True, "precision": 16,
                            "compute_dtype": "bfloat16"}),  # fmt: skip
    ("compressed, 2 bits + fp16 tier (the default)", {"length_bucketing": True, "nbits": 2,
                                                       "keep_full": True}),  # fmt: skip
    ("compressed, 2 bits alone", {"length_bucketing": True, "nbits": 2, "keep_full": False}),
]
FIGURE7 = 4  # the first four variants are the paper's; the compute dtypes are extra


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from latesearch.modeling import ColBERT

    device = "cuda" if torch.cuda.is_available() else "cpu"
    workers = args.workers if args.workers is not None else _default_workers()
    work = Path(tempfile.mkdtemp(prefix="latesearch-bench-"))
    try:
        subset, n_docs = write_subset(args.collection, args.limit, work / "subset.jsonl")
        model = ColBERT.from_pretrained(args.model, device=device)
        print(f"{n_docs} documents from {args.collection}; {describe(machine_info())}",
              file=sys.stderr)  # fmt: skip
        variants = [(n, {"tokenizer_workers": workers, **c}) for n, c in VARIANTS]
        if args.no_compute_dtypes:
            variants = variants[:FIGURE7]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
        for round_ in range(args.rounds):
            for name, changes in variants:
                runs[name].append(build_once(subset, work / "index", model, changes, args))
                last = runs[name][-1]
                print(f"round {round_ + 1} {name:<26} {last['docs_per_second']:8.2f} docs/s",
                      file=sys.stderr)  # fmt: skip
        rows = summarize(variants, runs)
        pylate = None if args.no_pylate else run_pylate(subset, args, model)
        if pylate and pylate.get("docs_per_second"):
            best = max(r["docs_per_second"] for r in rows[:FIGURE7])
            pylate["latesearch_over_pylate"] = round(best / pylate["docs_per_second"], 3)
        result = {
            "benchmark": "indexing (paper Figure 7)",
            "machine": machine_info(),
            "collection": str(args.collection),
            "documents": n_docs,
            "limit": args.limit,
            "model": str(model.source),
            "model_fingerprint": model.fingerprint(),
            "doc_maxlen": model.config.doc_maxlen,
            "dim": model.config.dim,
            "batch_size": args.batch_size,
            "group_size": args.group_size,
            "rounds": args.rounds,
            "variants": rows,
            "index_load": measure_load(args.load_index) if args.load_index else None,
            "pylate": pylate,
            "notes": NOTES,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
        write_results(args.out, f"indexing-{device}", result, markdown(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


NOTES = [
    "docs_per_second: documents / wall time of build_index with a loaded model (encoding, "
    "chunk files, SQLite doc store, manifest; no BM25/ANN), median over rounds.",
    "embedding_bytes_per_doc: chunk files (embeddings + doclens) / documents; "
    "index_bytes_per_doc: every file of the index folder (the SQLite text store included).",
    "baseline tokenizes each group inline before encoding it (the Rust tokenizer's own "
    "batch parallelism left as is); '+ parallel tokenization' tokenizes in worker threads "
    "overlapping with encoding, and pads batches in a background thread.",
    "docs_per_cpu_second: documents / CPU time of the process (all threads); less sensitive "
    "to other jobs on shared cores than wall time, but blind to overlap (parallel stages).",
    "Timings on shared CPU cores are noisy: compare ratios within one run only.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", type=Path, default=ROOT.parent / "shared/data/scifact",
                        help="collection file or BEIR folder")  # fmt: skip
    parser.add_argument("--limit", type=int, default=800, help="first N documents (0: all)")
    parser.add_argument("--model", default=None, help="checkpoint (default: built-in model)")
    parser.add_argument("--batch-size", type=int, default=64, help="documents per batch (b)")
    parser.add_argument("--group-size", type=int, default=100_000, help="documents per group")
    parser.add_argument("--workers", type=int, default=None, help="tokenizer threads")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions")
    parser.add_argument("--no-compute-dtypes", action="store_true",
                        help="skip the float16/bfloat16 autocast variants")  # fmt: skip
    parser.add_argument("--load-index", type=Path, default=ROOT / ".work/indexes/scifact-default",
                        help="existing index whose Index.load is timed ('' to skip)")  # fmt: skip
    parser.add_argument("--no-pylate", action="store_true", help="skip the PyLate comparison")
    parser.add_argument("--pylate-path", default=os.environ.get("LATESEARCH_PYLATE_PATH", ""),
                        help="PYTHONPATH entries where pylate is installed")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args(argv)
    if args.load_index is not None and not str(args.load_index).strip("."):
        args.load_index = None
    if args.load_index is not None and not (args.load_index / "manifest.json").is_file():
        print(f"note: {args.load_index} is not an index; Index.load not timed", file=sys.stderr)
        args.load_index = None
    return args


def _default_workers() -> int:
    from latesearch.indexing.config import default_workers

    return default_workers()


def write_subset(collection: Path, limit: int, out: Path) -> tuple[Path, int]:
    """The first `limit` documents (all when 0) as BEIR JSONL, the same for every variant."""
    from latesearch.data import read_collection

    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for doc in read_collection(collection):
            if limit and n >= limit:
                break
            f.write(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}) + "\n")
            n += 1
    return out, n


def build_once(subset: Path, folder: Path, model: Any, changes: dict[str, Any], args) -> dict:
    """One full build; its speed and sizes."""
    from latesearch.indexing import IndexConfig, build_index

    run = {"batch_size": args.batch_size, "group_size": args.group_size}
    config = IndexConfig().replace(**run, **changes)
    shutil.rmtree(folder, ignore_errors=True)
    start, cpu = time.perf_counter(), time.process_time()
    store = build_index(subset, folder, model, config, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    files = [n for c in store.chunks for n in (c.embeddings, c.codes, c.residuals, c.doclens)]
    chunk_bytes = sum((folder / name).stat().st_size for name in files if name)
    result = {
        "seconds": seconds,
        "docs_per_second": store.n_docs / seconds,
        "docs_per_cpu_second": store.n_docs / cpu,
        "embedding_bytes_per_doc": chunk_bytes / store.n_docs,
        "index_bytes_per_doc": store.nbytes() / store.n_docs,
        "embeddings_per_doc": store.n_embeddings / store.n_docs,
        "config": {k: v for k, v in config.to_dict().items() if k in changes},
    }
    store.close()
    return result


def summarize(variants, runs) -> list[dict[str, Any]]:
    rows = []
    base = statistics.median(r["docs_per_second"] for r in runs[variants[0][0]])
    for name, _ in variants:
        rs = runs[name]
        speed = statistics.median(r["docs_per_second"] for r in rs)
        rows.append({
            "variant": name,
            "docs_per_second": round(speed, 2),
            "docs_per_second_rounds": [round(r["docs_per_second"], 2) for r in rs],
            "speedup_over_baseline": round(speed / base, 3),
            "docs_per_cpu_second": round(
                statistics.median(r["docs_per_cpu_second"] for r in rs), 2
            ),
            "embedding_bytes_per_doc": round(rs[0]["embedding_bytes_per_doc"], 1),
            "index_bytes_per_doc": round(statistics.median(r["index_bytes_per_doc"] for r in rs)),
            "embeddings_per_doc": round(rs[0]["embeddings_per_doc"], 2),
            "config": rs[0]["config"],
        })  # fmt: skip
    return rows


LOAD_SCRIPT = """
import json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
from latesearch import Index
before = rss(); start = time.perf_counter()
index = Index.load(sys.argv[1])
seconds = time.perf_counter() - start; after = rss()
print(json.dumps({"seconds": seconds, "rss_before_mib": before, "rss_growth_mib": after - before,
                  "n_docs": len(index), "n_embeddings": index.store.n_embeddings,
                  "dtype": index.store.dtype, "index_bytes": index.store.nbytes()}))
"""


def measure_load(folder: Path, repeats: int = 3) -> dict[str, Any]:
    """`Index.load` in fresh processes (after imports): wall time and resident-memory growth."""
    env = {**os.environ, "PYTHONPATH": _pythonpath(str(ROOT), os.environ.get("PYTHONPATH", ""))}
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(folder)], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = samples[0]
    return {
        "index": str(folder),
        "n_docs": first["n_docs"],
        "n_embeddings": first["n_embeddings"],
        "dtype": first["dtype"],
        "index_bytes": first["index_bytes"],
        "seconds_median": round(statistics.median(s["seconds"] for s in samples), 4),
        "seconds_max": round(max(s["seconds"] for s in samples), 4),
        "rss_growth_mib_max": round(max(s["rss_growth_mib"] for s in samples), 2),
        "note": "fresh process each time, imports done before the clock; page cache warm "
        "(embeddings are memory-mapped, so they are not read at load)",
    }


PYLATE_SCRIPT = """
import json, sys, time
import torch
from pylate import models
path, subset, batch, maxlen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(line) for line in open(subset, encoding="utf-8")]
texts = [f"{r['title']} {r['text']}" if r["title"] else r["text"] for r in rows]
model = models.ColBERT(model_name_or_path=path, device="cpu", document_length=maxlen)
model.encode(texts[:batch], is_query=False, batch_size=batch, show_progress_bar=False)  # warm-up
start = time.perf_counter()
out = model.encode(texts, is_query=False, batch_size=batch, show_progress_bar=False)
seconds = time.perf_counter() - start
import pylate
print(json.dumps({"seconds": seconds, "docs": len(texts), "version": pylate.__version__,
                  "embeddings_per_doc": sum(len(e) for e in out) / len(out),
                  "dtype": str(out[0].dtype), "torch_threads": torch.get_num_threads()}))
"""


def _pythonpath(*entries: str) -> str:
    return os.pathsep.join(e for e in entries if e)


def run_pylate(subset: Path, args, model: Any) -> dict[str, Any]:
    """PyLate's ColBERT.encode on the same documents, same backbone, in a subprocess."""
    from latesearch.modeling.default import backbone_path

    model_path = str(args.model or backbone_path())
    maxlen = model.config.doc_maxlen
    env = {**os.environ, "PYTHONPATH": _pythonpath(args.pylate_path, str(ROOT)),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    command = [sys.executable, "-c", PYLATE_SCRIPT, model_path, str(subset),
               str(args.batch_size), str(maxlen)]  # fmt: skip
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return {"ran": False, "why": "timed out after an hour"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ran": False, "why": f"PyLate could not run here: {tail}"}
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "ran": True,
        "version": data["version"],
        "documents": data["docs"],
        "docs_per_second": round(data["docs"] / data["seconds"], 2),
        "embeddings_per_doc": round(data["embeddings_per_doc"], 2),
        "model": model_path,
        "document_length": maxlen,
        "batch_size": args.batch_size,
        "what": "pylate.models.ColBERT.encode(is_query=False) to in-memory float32 arrays "
        "(no index written), after a one-batch warm-up; latesearch's figure is a full build "
        "written to disk. Both projections are untrained (PyLate adds [Q]/[D] tokens and "
        "a random Dense layer to the plain backbone), so this compares speed only.",
        "pythonpath": args.pylate_path,
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Indexing throughput ({r['documents']} documents of {Path(r['collection']).name})",
        "",
        f"Machine: {describe(r['machine'])}, {r['machine']['torch_threads']} torch threads. "
        f"Model: {'/'.join(Path(r['model']).parts[-2:])} (dim {r['dim']}, "
        f"doc_maxlen {r['doc_maxlen']}), batch {r['batch_size']}; "
        f"median of {r['rounds']} interleaved round(s).",
        "",
        "| variant | docs/s | × baseline | docs/CPU-s | embedding bytes/doc | index bytes/doc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for v in r["variants"]:
        lines.append(f"| {v['variant']} | {v['docs_per_second']:.1f} | "
                     f"{v['speedup_over_baseline']:.2f} | {v['docs_per_cpu_second']:.1f} | "
                     f"{v['embedding_bytes_per_doc']:,.0f} | "
                     f"{v['index_bytes_per_doc']:,} |")  # fmt: skip
    by_name = {v["variant"]: v for v in r["variants"]}
    half = by_name.get("+ half-precision storage")
    for name in ("+ float16 compute", "+ bfloat16 compute"):
        if half and name in by_name:
            ratio = by_name[name]["docs_per_second"] / half["docs_per_second"]
            verdict = "faster" if ratio > 1.05 else "slower" if ratio < 0.95 else "no faster"
            lines += ["", f"{name[2:]} (autocast) on {r['machine'].get('gpu') or 'CPU'}: "
                      f"{ratio:.2f}× the float32-compute speed, i.e. {verdict}."]  # fmt: skip
    p = r.get("pylate")
    if p and p.get("ran"):
        lines += ["", f"PyLate {p['version']} encode only, same documents and backbone: "
                  f"{p['docs_per_second']:.1f} docs/s; latesearch (best of the first four, "
                  f"full build) / PyLate = {p['latesearch_over_pylate']:.2f}."]  # fmt: skip
    elif p:
        lines += ["", f"PyLate not run: {p['why']}"]
    load = r.get("index_load")
    if load:
        lines += ["", f"`Index.load` of {Path(load['index']).name} ({load['n_docs']:,} docs, "
                  f"{load['n_embeddings']:,} embeddings, {load['index_bytes'] / 2**20:,.0f} MiB): "
                  f"{load['seconds_median'] * 1000:.1f} ms median, RSS +"
                  f"{load['rss_growth_mib_max']:.1f} MiB at most."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
