"""Index build and search at scale (10k, 100k, 1M passages) on synthetic documents.

    python benchmarks/scale.py --sizes 10000 100000 1000000

Encoding a million passages on a few CPU cores is out of reach, so the documents are
SYNTHETIC: each one takes a random real SciFact document's token vectors (from an existing
uncompressed fp16 index built with the default model), resamples about 100 of them (with
replacement), adds small gaussian noise and re-normalizes them to unit length. They are
generated chunk by chunk and written as an uncompressed index (format version 1) through
latesearch's own writers, with the default model's fingerprint and config, so that
`Index.load(folder, model)` accepts the default model for (real) queries. Then
`compress_index(nbits=2)` (k-means, assignment and residual coding, inverted file) makes
the compressed index and the uncompressed one is deleted.

Each phase runs in its own subprocess (bounded memory, a clean peak RSS): `generate`,
`compress` and `search` (real SciFact test queries, one per call, k=10, on --threads
threads). Per-size results go to .work/scale/results/<n>.json; every run (and `--report`)
rewrites benchmarks/results/scale-<device>.json and .md from all sizes measured so far.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(1, str(ROOT))

from _machine import describe, machine_info  # noqa: E402

SOURCE = ROOT / ".work" / "eval" / "indexes" / "scifact-5196871aa4b9"
WORK = ROOT / ".work" / "scale"
DATA = ROOT.parent / "shared" / "data" / "scifact"
RESULTS = ROOT / "benchmarks" / "results"
STAGES = ("encode", "candidates", "interaction", "gather", "score", "total")
TARGETS = {"p50_ms": 100.0, "peak_rss_gib": 4.0, "build_s": 3600.0}  # at 1M passages


def main() -> None:
    args = parse_args()
    if args.phase == "generate":
        return _emit(args.out, generate(args))
    if args.phase == "compress":
        return _emit(args.out, compress(args))
    if args.phase == "search":
        return _emit(args.out, search(args))
    for n in [] if args.report else args.sizes:
        run_size(n, args)
        write_report(args)
    write_report(args)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--source", type=Path, default=SOURCE, help="uncompressed fp16 index")
    p.add_argument("--data", type=Path, default=DATA, help="SciFact folder (queries, qrels)")
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--mean-len", type=int, default=100, help="mean tokens per document")
    p.add_argument("--noise", type=float, default=0.02, help="gaussian sigma per dimension")
    p.add_argument("--chunk-docs", type=int, default=25_000, help="documents per chunk file")
    p.add_argument("--nbits", type=int, default=2)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ndocs", type=int, default=None,
                   help="the engine's ndocs when searching (default: EngineParams.for_k)")
    p.add_argument("--keep", action="store_true", help="keep the compressed indexes")
    p.add_argument("--report", action="store_true", help="only rewrite the result files")
    p.add_argument("--notes", type=Path, help="markdown added to the report (findings)")
    p.add_argument("--phase", choices=("generate", "compress", "search"), help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args()


# ---------------------------------------------------------------------- orchestration
def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate, compress and search `n` synthetic passages; saved to <work>/results/n.json."""
    raw, packed = args.work / f"synthetic-{n}", args.work / f"synthetic-{n}-nbits{args.nbits}"
    (args.work / "results").mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"n_passages": n}
    path = args.work / "results" / f"{n}.json"
    for phase, folder in (("generate", raw), ("compress", raw), ("search", packed)):
        print(f"[scale] {n:,} passages: {phase} ...", file=sys.stderr, flush=True)
        out = args.work / "results" / f"{n}.{phase}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase,
                   "--n", str(n), "--folder", str(folder), "--out", str(out),
                   *_pass_through(args)]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, check=False)
        record[f"{phase}_wall_s"] = round(time.perf_counter() - started, 3)
        if done.returncode != 0:
            record[phase] = {"error": f"exit status {done.returncode} (see the log)"}
            break
        record[phase] = json.loads(out.read_text())
        if phase == "compress":
            shutil.rmtree(raw)  # the fp16 vectors are not needed any more
            record["uncompressed_deleted"] = True
        path.write_text(json.dumps(record, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(packed, ignore_errors=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _pass_through(args: argparse.Namespace) -> list[str]:
    return ["--source", str(args.source), "--data", str(args.data), "--work", str(args.work),
            "--mean-len", str(args.mean_len), "--noise", str(args.noise),
            "--chunk-docs", str(args.chunk_docs), "--nbits", str(args.nbits),
            "--queries", str(args.queries), "--warmup", str(args.warmup), "--k", str(args.k),
            "--threads", str(args.threads), "--seed", str(args.seed),
            *(["--ndocs", str(args.ndocs)] if args.ndocs else [])]  # fmt: skip


def _emit(path: Path, result: dict[str, Any]) -> None:
    result["process"] = _proc_status()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["process"]["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    result["process"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    path.write_text(json.dumps(result, indent=2) + "\n")


def _proc_status() -> dict[str, float]:
    """This process's peak and current memory (GiB) from /proc/self/status."""
    out = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 2**20, 3)  # kB -> GiB
    return out


# ---------------------------------------------------------------------- generate
def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Write `args.n` synthetic passages as an uncompressed fp16 index in `args.folder`."""
    import numpy as np
    import torch

    from latesearch.compressed.arrays import chunk_digest, save_npy
    from latesearch.indexing.docstore import DocStoreWriter
    from latesearch.indexing.files import folder_bytes
    from latesearch.indexing.manifest import (
        CHUNKS_DIR,
        DOC_ID_OFFSETS,
        DOC_IDS,
        DOCSTORE,
        FORMAT_VERSION,
        ChunkInfo,
        Manifest,
        chunk_files,
    )
    from latesearch.indexing.storage import IndexStore
    from latesearch.indexing.summary import BuildSummary

    started = time.perf_counter()
    with IndexStore.open(args.source) as src:
        source = src.manifest
        real = torch.from_numpy(
            np.concatenate([np.asarray(a, dtype=np.float32) for a in src.embeddings_flat()])
        )
        real_lens = src.doclens.astype(np.int64)
        real_offsets = src.offsets[:-1].astype(np.int64)
    load_s = time.perf_counter() - started
    folder: Path = args.folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / CHUNKS_DIR).mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    noise = torch.Generator().manual_seed(args.seed)
    docstore = DocStoreWriter(folder / DOCSTORE)
    chunks: list[ChunkInfo] = []
    n_docs = n_tokens = 0
    seconds = {"vectors": 0.0, "write": 0.0}
    while n_docs < args.n:
        t0 = time.perf_counter()
        m = min(args.chunk_docs, args.n - n_docs)
        picked = rng.integers(0, len(real_lens), size=m)
        lens = np.clip(np.rint(rng.normal(args.mean_len, 0.3 * args.mean_len, size=m)),
                       16, 2 * args.mean_len).astype(np.int64)  # fmt: skip
        owner = np.repeat(picked, lens)
        rows = real_offsets[owner] + (rng.random(owner.size) * real_lens[owner]).astype(np.int64)
        embeddings = np.empty((rows.size, real.shape[1]), dtype=np.float16)
        for a in range(0, rows.size, 1 << 18):  # bounded float32 temporaries; torch: faster
            x = real.index_select(0, torch.from_numpy(rows[a : a + (1 << 18)]))
            x.add_(torch.randn(x.shape, generator=noise), alpha=args.noise)
            x = torch.nn.functional.normalize(x, dim=1)
            embeddings[a : a + len(x)] = x.to(torch.float16).numpy()
        t1 = time.perf_counter()
        emb_name, lens_name = chunk_files(len(chunks))
        save_npy(folder / emb_name, embeddings)
        save_npy(folder / lens_name, lens.astype(np.int32))
        ids = [f"s{i:07d}" for i in range(n_docs + 1, n_docs + m + 1)]
        docstore.add(n_docs, [(doc_id, "", "", None) for doc_id in ids])
        chunks.append(ChunkInfo(index=len(chunks), first_doc=n_docs, n_docs=m,
                                first_token=n_tokens, n_embeddings=int(rows.size),
                                embeddings=emb_name, doclens=lens_name,
                                sha256=chunk_digest(embeddings)))  # fmt: skip
        n_docs, n_tokens = n_docs + m, n_tokens + int(rows.size)
        seconds["vectors"] += t1 - t0
        seconds["write"] += time.perf_counter() - t1
        print(f"[generate] {n_docs:,}/{args.n:,} docs, {n_tokens:,} tokens, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    docstore.write_id_map(folder, n_docs, DOC_IDS, DOC_ID_OFFSETS)
    docstore.close()
    total = time.perf_counter() - started
    summary = BuildSummary(docs=n_docs, embeddings=n_tokens, seconds=round(total, 3),
                           devices=["cpu"], dtype="float16")  # fmt: skip
    index_config = source.config.replace(chunk_size=args.chunk_docs).to_dict()
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model_source=source.model_source,
        model_fingerprint=source.model_fingerprint,
        colbert_config=source.colbert_config,
        index_config=index_config,
        n_docs=n_docs,
        n_embeddings=n_tokens,
        dim=source.dim,
        dtype="float16",
        chunks=chunks,
        created=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        stats=summary.to_dict(),
        collection={"synthetic": True, "resampled_from": str(args.source),
                    "mean_len": args.mean_len, "noise_sigma": args.noise, "seed": args.seed},
    )  # fmt: skip
    manifest.write(folder)
    manifest.stats["bytes_on_disk"] = folder_bytes(folder)
    manifest.write(folder)
    return {
        "n_docs": n_docs,
        "n_tokens": n_tokens,
        "tokens_per_doc": round(n_tokens / n_docs, 2),
        "n_chunks": len(chunks),
        "seconds": round(total, 3),
        "seconds_load_source": round(load_s, 3),
        "seconds_vectors": round(seconds["vectors"], 3),
        "seconds_write": round(seconds["write"], 3),
        "bytes_uncompressed": manifest.stats["bytes_on_disk"],
    }


# ---------------------------------------------------------------------- compress
def compress(args: argparse.Namespace) -> dict[str, Any]:
    """`compress_index` of the synthetic uncompressed index; phases from its manifest."""
    from latesearch.indexing import compress_index
    from latesearch.indexing.files import folder_bytes
    from latesearch.indexing.manifest import DOCSTORE

    target = args.folder.with_name(f"{args.folder.name}-nbits{args.nbits}")
    started = time.perf_counter()
    store = compress_index(args.folder, target, nbits=args.nbits, keep_full=False, overwrite=True,
                           progress=True)
    total = time.perf_counter() - started
    codec = store.manifest.codec or {}
    n_tokens = store.n_embeddings
    store.close()
    quality = assignment_quality(args.folder, target, seed=args.seed)
    total_bytes = folder_bytes(target)
    docstore_bytes = (target / DOCSTORE).stat().st_size
    parts = {}
    for path in target.rglob("*"):
        if path.is_file():
            key = path.relative_to(target).parts[0]
            if key == "chunks":
                key = "chunks/" + path.name.split(".", 1)[1]
            parts[key] = parts.get(key, 0) + path.stat().st_size
    return {
        "folder": str(target),
        "seconds": round(total, 3),
        "phases": codec.get("seconds", {}),
        "n_centroids": codec.get("n_centroids"),
        "trained_on": codec.get("trained_on"),
        "approximate_assignment": codec.get("approximate_assignment"),
        "codes_dtype": codec.get("codes_dtype"),
        "nbits": codec.get("nbits"),
        "bytes": total_bytes,
        "bytes_docstore": docstore_bytes,
        "bytes_by_part": parts,
        "bytes_per_token": round((total_bytes - docstore_bytes) / n_tokens, 3),
        "assignment_quality": quality,
    }


def assignment_quality(raw: Path, packed: Path, n: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """What the build's (approximate) assignment costs, on `n` sampled tokens: how often its
    centroid is the exact nearest one, the inner product lost, and the cosine of the
    decompressed vector to the original with the build's codes and with exact ones."""
    import numpy as np

    from latesearch.compressed.centroids import nearest
    from latesearch.indexing.storage import IndexStore

    def rows_of(parts: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        bounds = np.cumsum([0] + [len(p) for p in parts])
        spans = zip(parts, bounds[:-1], bounds[1:], strict=True)
        return np.concatenate([np.asarray(p[rows[(rows >= lo) & (rows < hi)] - lo])
                               for p, lo, hi in spans])  # fmt: skip

    with IndexStore.open(raw) as full, IndexStore.open(packed) as store:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(full.n_embeddings, size=min(n, full.n_embeddings),
                                  replace=False))  # fmt: skip
        x = rows_of(list(full.embeddings_flat()), rows).astype(np.float32)
        built = rows_of(list(store.codes_flat()), rows).astype(np.int64)
        codec = store.codec
        started = time.perf_counter()
        exact = nearest(codec.centroids32, x)
        exact_s = time.perf_counter() - started
    c = codec.centroids32

    def cosine(codes: np.ndarray) -> float:
        y = codec.decompress(codes, codec.compress(x, codes))
        return float(np.mean(np.sum(x * y, axis=1) / np.linalg.norm(x, axis=1)))

    return {
        "tokens": len(rows),
        "agreement": round(float(np.mean(built == exact)), 4),
        "inner_product_lost": round(float(np.mean(np.sum(x * (c[exact] - c[built]), axis=1))), 5),
        "cosine_built": round(cosine(built), 5),
        "cosine_exact": round(cosine(exact), 5),
        "exact_assignment_us_per_token": round(exact_s / len(rows) * 1e6, 2),
    }


# ---------------------------------------------------------------------- search
def search(args: argparse.Namespace) -> dict[str, Any]:
    """Latency of real SciFact test queries, one per call, on the compressed index."""
    import faiss
    import torch

    from latesearch import ColBERT, Index
    from latesearch.data import read_qrels, read_queries

    queries = read_queries(args.data / "queries.jsonl")
    judged = read_qrels(args.data / "qrels" / "test.tsv")
    texts = [text for qid, text in queries.items() if qid in judged][: args.queries]
    started = time.perf_counter()
    model = ColBERT.from_pretrained(None, device="cpu")
    index = Index.load(args.folder, model)
    torch.set_num_threads(args.threads)  # after loading the model (its seeded projection)
    faiss.omp_set_num_threads(args.threads)
    _ = index.model
    load_s = time.perf_counter() - started
    after_load = _proc_status()
    load_before = list(os.getloadavg())
    options = {} if args.ndocs is None else {"ndocs": args.ndocs}
    for text in texts[: args.warmup]:
        index.search(text, k=args.k, **options)
    rows, n_hits = [], []
    for text in texts:
        start, cpu = time.perf_counter(), time.process_time()
        hits = index.search(text, k=args.k, **options)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        t = index.last_timings.to_dict()
        rows.append({**{s: float(t[s]) for s in STAGES}, "wall": wall, "cpu": cpu,
                     "docs_scored": float(t["n_candidates"])})  # fmt: skip
        n_hits.append(len(hits))
    summary: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        scale = 1.0 if key == "docs_scored" else 1000.0
        summary[key] = {"median": round(statistics.median(values) * scale, 3),
                        "p95": round(_percentile(values, 0.95) * scale, 3),
                        "mean": round(statistics.fmean(values) * scale, 3)}  # fmt: skip
    without_encode = [r["wall"] - r["encode"] for r in rows]
    summary["wall_minus_encode"] = {
        "median": round(statistics.median(without_encode) * 1000, 3),
        "p95": round(_percentile(without_encode, 0.95) * 1000, 3),
    }
    return {
        "queries": len(rows),
        "warmup": args.warmup,
        "k": args.k,
        "engine_options": options,
        "threads": {"torch": torch.get_num_threads(), "faiss": faiss.omp_get_max_threads()},
        "mode": str(index.last_timings.mode),
        "load_seconds": round(load_s, 3),
        "memory_after_load_gib": after_load,
        "latency_ms": summary,
        "hits_per_query_min": min(n_hits),
        "load_average_before": load_before,
        "load_average": list(os.getloadavg()),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---------------------------------------------------------------------- report
def write_report(args: argparse.Namespace) -> None:
    records = []
    for path in sorted((args.work / "results").glob("*.json")):
        if path.stem.isdigit():
            records.append(json.loads(path.read_text()))
    records.sort(key=lambda r: r["n_passages"])
    for r in records:  # later searches of a kept index (`--phase search --out n.search-X.json`)
        for path in sorted((args.work / "results").glob(f"{r['n_passages']}.search-*.json")):
            r.setdefault("search_reruns", {})[path.stem.split(".", 1)[1]] = json.loads(
                path.read_text()
            )
    info = machine_info()
    device = "gpu" if info.get("gpu") else "cpu"
    command = "python benchmarks/scale.py --sizes " + " ".join(
        str(r["n_passages"]) for r in records
    )
    result = {
        "benchmark": "scale",
        "machine": info,
        "command": command,
        "synthetic": (
            "Documents are SYNTHETIC: each is a random real SciFact document's token vectors "
            f"(from {SOURCE.relative_to(ROOT)}, default model, fp16), resampled with "
            f"replacement to ~{args.mean_len} tokens (normal, sd 30%, clipped to "
            f"[16, {2 * args.mean_len}]), plus gaussian noise (sigma {args.noise} per "
            "dimension), re-normalized. Queries are real SciFact test queries."
        ),
        "settings": {
            "nbits": args.nbits,
            "k": args.k,
            "threads": args.threads,
            "queries": args.queries,
            "warmup": args.warmup,
            "chunk_docs": args.chunk_docs,
            "seed": args.seed,
        },  # fmt: skip
        "targets_at_1M": TARGETS,
        "sizes": records,
        "notes": args.notes.read_text(encoding="utf-8") if args.notes else "",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scale-{device}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"scale-{device}.md").write_text(_markdown(result, info))


def _markdown(result: dict[str, Any], info: dict[str, Any]) -> str:
    lines = [
        "# Scale: build and search at 10k / 100k / 1M passages",
        "",
        f"Machine: {describe(info)}.",
        "",
        f"Command: `{result['command']}`",
        "",
        result["synthetic"],
        "",
        f"Build = `compress_index(nbits={result['settings']['nbits']})` from the fp16 "
        "embeddings (k-means train, assign + code, inverted file); generation of the synthetic "
        "vectors is listed apart. Search: the engine (mode e2e), k = "
        f"{result['settings']['k']}, {result['settings']['queries']} queries one per call "
        f"after {result['settings']['warmup']} warm-ups, torch and faiss on "
        f"{result['settings']['threads']} threads, each size in a fresh process. Bytes per "
        "token: the compressed folder minus docs.sqlite.",
        "",
        "| passages | tokens | gen s | train s | assign+code s | ivf s | build s | centroids "
        "| B/token | p50 ms | p95 ms | encode ms | RSS load GiB | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sizes"]:
        g, c, s = r.get("generate", {}), r.get("compress", {}), r.get("search", {})
        ph, lat = c.get("phases", {}), s.get("latency_ms", {})
        cells = [
            f"{r['n_passages']:,}",
            f"{g.get('n_tokens', 0):,}",
            _num(g.get("seconds")),
            _num(ph.get("train")),
            _num(ph.get("assign_and_code")),
            _num(ph.get("ivf")),
            _num(c.get("seconds")),
            str(c.get("n_centroids", "-")),
            _num(c.get("bytes_per_token"), 2),
            _num(lat.get("wall", {}).get("median")),
            _num(lat.get("wall", {}).get("p95")),
            _num(lat.get("encode", {}).get("median")),
            _num(s.get("memory_after_load_gib", {}).get("VmRSS"), 2),
            _num(s.get("process", {}).get("VmHWM"), 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per-stage mean ms (engine):", "",
              "| passages | " + " | ".join(STAGES) + " | docs scored (median) |",
              "|---|" + "---|" * (len(STAGES) + 1)]  # fmt: skip
    for r in result["sizes"]:
        lat = r.get("search", {}).get("latency_ms", {})
        if lat:
            cells = [_num(lat[s]["mean"]) for s in STAGES]
            scored = _num(lat["docs_scored"]["median"], 0)
            lines.append(f"| {r['n_passages']:,} | " + " | ".join(cells) + f" | {scored} |")
    lines += ["", "What the build's assignment costs (20,000 sampled tokens; exact below 32,768 "
              "centroids, the two-level tree from there on): agreement with the exact nearest "
              "centroid, inner product lost, mean cosine of decompressed to original vectors "
              "with the build's codes / with exact ones:", ""]  # fmt: skip
    for r in result["sizes"]:
        q = r.get("compress", {}).get("assignment_quality")
        if q:
            lines.append(f"- {r['n_passages']:,}: {q['agreement']:.4f}, "
                         f"{q['inner_product_lost']:.4f}, {q['cosine_built']:.4f} / "
                         f"{q['cosine_exact']:.4f} (exact search: "
                         f"{q['exact_assignment_us_per_token']:.0f} us a token)")  # fmt: skip
    errors = [(r["n_passages"], p, r[p]["error"]) for r in result["sizes"]
              for p in ("generate", "compress", "search") if "error" in r.get(p, {})]  # fmt: skip
    if errors:
        lines += ["", "Failures:", ""] + [f"- {n:,} {p}: {e}" for n, p, e in errors]
    reruns = [(r["n_passages"], name, x) for r in result["sizes"]
              for name, x in r.get("search_reruns", {}).items()]  # fmt: skip
    if reruns:
        lines += ["", "Later searches of the same kept index (ms, median / p95; peak RSS GiB):", "",
                  "| passages | run | threads | wall | encode | wall - encode | CPU per query "
                  "| peak RSS |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for n, name, x in reruns:
            lat = x["latency_ms"]
            cells = [f"{n:,}", name, str(x["threads"]["torch"])]
            for key in ("wall", "encode", "wall_minus_encode", "cpu"):
                cells.append(f"{_num(lat[key]['median'])} / {_num(lat[key]['p95'])}")
            cells.append(_num(x["process"]["VmHWM"], 2))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Load average (1 min) at the end of each phase, CPU seconds of the phase's "
              "process:", ""]  # fmt: skip
    for r in result["sizes"]:
        cells = []
        for phase in ("generate", "compress", "search"):
            proc = r.get(phase, {}).get("process", {})
            load = proc.get("load_average_end", r.get(phase, {}).get("load_average", ["-"]))
            first = f"{load[0]:.1f}" if isinstance(load[0], float) else load[0]
            cells.append(f"{phase} {first} / {proc.get('cpu_seconds', '-')}")
        lines.append(f"- {r['n_passages']:,}: " + "; ".join(cells))
    if result["notes"]:
        lines += ["", result["notes"].rstrip()]
    t = result["targets_at_1M"]
    lines += ["", f"Targets at 1M passages: p50 < {t['p50_ms']:.0f} ms per query on 2 threads, "
              f"peak search RSS < {t['peak_rss_gib']:.0f} GiB, build < {t['build_s']:.0f} s.",
              ""]  # fmt: skip
    return "\n".join(lines)


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":
    main()
