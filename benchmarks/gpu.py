"""One prepared run for a session lent a GPU: the CUDA tests, indexing throughput, search
latency against the CPU on the same index, and a few training steps checked against the CPU.

    python benchmarks/gpu.py --pack                            # here: what the GPU lacks
    python3 benchmarks/gpu.py --packed .work/gpu --out "$OUT"  # there (docs/benchmarks.md)
    python benchmarks/gpu.py --device cpu --dry-run            # tiny sizes, to check it

Steps, each timed; one that fails records its error and the next runs; the results are
rewritten after every step, so a run cut short keeps what it measured:
1. tests: the test files that mention CUDA, under pytest in a subprocess (counts, outcomes).
2. indexing: `Index.build` of N documents (SciFact, else synthetic text) at 2 bits with and
   without the fp16 tier, in float32 and the half-precision compute dtypes the device has.
3. search: "e2e" and "exact", k 10 and 100, 1 and 32 queries per call, on the default build,
   the device and the CPU interleaved on the same index; query encoding reported apart.
4. training: `latesearch.train` on tiny synthetic triples, dropout off: the first steps on
   the device (float32, then bf16 autocast) against the CPU's, and examples/s over N steps.

The GPU machine reaches no network and receives at most 64 MiB, so `--pack` gathers into
.work/gpu/ the wheels of the dependencies its image lacks (for its Python 3.12), the default
model with each weight matrix rounded to int8 per row (23 MB instead of 91; speed does not
depend on the weights' values; the embeddings' agreement with the shipped model is recorded)
and SciFact's corpus and queries, gzipped. Writes benchmarks/results/gpu-<device>.json and .md
(a dry run: gpu-<device>-dryrun in .work/gpu-dryrun/).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, RESULTS, command, load_average, summary_ms, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

PACK = REPO / ".work" / "gpu"
# distribution -> module, for what the GPU image lacks (device README, KINDS.md)
WHEELS = {
    "faiss-cpu": "faiss",
    "bm25s": "bm25s",
    "PyStemmer": "Stemmer",
    "ir-measures": "ir_measures",
    "pytrec-eval-terrier": "pytrec_eval",
}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")  # fmt: skip
STEPS = ("tests", "indexing", "search", "training")
# the sizes of a real run and of a dry run (each overridable on the command line)
SIZES = {
    "full": {"docs": 2000, "latency_queries": 50, "batch_calls": 5, "train_steps": 30,
             "compare_steps": 3, "train_batch": 32, "train_doc_maxlen": 180},
    "dry": {"docs": 24, "latency_queries": 3, "batch_calls": 1, "train_steps": 4,
            "compare_steps": 2, "train_batch": 4, "train_doc_maxlen": 32},
}  # fmt: skip
TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2}  # |loss - CPU loss| <= tol * (1 + |CPU loss|)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pack", action="store_true", help="gather what the GPU machine lacks")
    p.add_argument("--packed", type=Path, default=None, help="run from a --pack folder")
    p.add_argument("--pack-dir", type=Path, default=PACK, help="where --pack writes")
    p.add_argument("--python-version", default="3.12", help="the GPU machine's Python (pack)")
    p.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes; results to .work/")
    p.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    p.add_argument("--model", default=None, help="checkpoint (default: built-in or packed)")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=None, help="results folder")
    for name in SIZES["full"]:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    p.add_argument("--test-timeout", type=int, default=300, help="seconds for pytest")
    args = p.parse_args(argv)
    for name, value in SIZES["dry" if args.dry_run else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = REPO / ".work" / "gpu-dryrun" if args.dry_run else RESULTS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pack:
        pack(args)
        return 0
    site, setup_error = None, None
    try:  # a failure here is recorded; the steps then fail (and say why) one by one
        site = install_missing(args.packed) if args.packed else None
    except (OSError, subprocess.CalledProcessError) as err:
        setup_error = f"installing the packed wheels failed: {err}"
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ctx = Context(args, device, Path(tempfile.mkdtemp(prefix="latesearch-gpu-")), site)
    stem = f"gpu-{device}" + ("-dryrun" if args.dry_run else "")
    result: dict[str, Any] = {
        "benchmark": "gpu",
        "dry_run": args.dry_run,
        "device": device,
        "command": command(),
        "machine": machine_info(),
        "cuda": cuda_info(),
        "load_average_start": load_average(),
        "sizes": {name: getattr(args, name) for name in SIZES["full"]},
        "setup_error": setup_error,
        "model": run_step(lambda _: ctx.model_info(), ctx),
        "data": ctx.data_label(),
        "steps": {},
    }
    try:
        for name in args.steps:
            print(f"[gpu.py] {name}...", flush=True)
            result["steps"][name] = run_step(globals()[f"step_{name}"], ctx)
            print(f"[gpu.py] {name}: {summary_line(result['steps'][name])}", flush=True)
            result["load_average_end"] = load_average()
            write_results(args.out, stem, result, markdown(result))
    finally:
        shutil.rmtree(ctx.work, ignore_errors=True)
    return 0 if all(s["ok"] for s in result["steps"].values()) else 1


def run_step(step, ctx: Context) -> dict[str, Any]:
    """The step's figures with ok, seconds, and on failure the error and its traceback."""
    started = time.perf_counter()
    try:
        out = {"ok": True, **step(ctx)}
    except Exception as err:  # recorded, and the next step runs
        out = {"ok": False, "error": f"{type(err).__name__}: {err}",
               "traceback": traceback.format_exc().splitlines()[-15:]}  # fmt: skip
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


# ---------------------------------------------------------------------- what a run uses
class Context:
    """The run's settings, device, scratch folder, models, documents and queries."""

    def __init__(self, args: argparse.Namespace, device: str, work: Path, site: str | None):
        self.args, self.device, self.work, self.site = args, device, work, site
        self._models: dict[str, Any] = {}
        self.model_path: str | None = args.model
        if args.model is None and args.packed is not None:
            self.model_path = str(unpack_model(args.packed / "model", work / "model"))
        self.index_folder: Path | None = None

    def model(self, device: str):
        from latesearch import ColBERT

        if device not in self._models:
            self._models[device] = ColBERT.from_pretrained(self.model_path, device=device)
        return self._models[device]

    def model_info(self) -> dict[str, Any]:
        info = {"path": self.model_path or "built-in default"}
        if self.args.packed is not None:
            info["packed"] = json.loads((self.args.packed / "pack.json").read_text())["model"]
        info["fingerprint"] = self.model("cpu").fingerprint()
        return info

    def _source(self, name: str) -> Path | None:
        """The packed (gzipped) or --data SciFact file, if present."""
        if self.args.packed is not None and (self.args.packed / f"{name}.gz").is_file():
            return self.args.packed / f"{name}.gz"
        path = self.args.data / "scifact" / name
        return path if path.is_file() else None

    def data_label(self) -> str:
        source = self._source("corpus.jsonl")
        return f"SciFact ({source})" if source else "synthetic text (no SciFact found)"

    def corpus(self, n: int) -> tuple[Path, int]:
        """The first `n` documents as BEIR JSONL in the scratch folder, and their count."""
        out = self.work / f"corpus-{n}.jsonl"
        source = self._source("corpus.jsonl")
        rows = _jsonl(source, n) if source else synthetic_docs(n)
        with open(out, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        return out, len(rows)

    def queries(self, n: int) -> list[str]:
        source = self._source("queries.jsonl")
        texts = [r["text"] for r in _jsonl(source, n)] if source else synthetic_queries(n)
        return (texts * (n // max(1, len(texts)) + 1))[:n]


def _jsonl(path: Path, n: int) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip() and len(rows) < n:
                rows.append(json.loads(line))
    return rows


WORDS = (
    "protein cell gene expression cancer tumor patient risk study trial dose effect "
    "mouse model receptor signal pathway immune response infection virus vaccine drug "
    "therapy blood brain neuron memory sleep diet obesity insulin glucose heart muscle "
    "bone growth factor mutation variant genome sequence rna dna binding enzyme "
    "activity increase decrease reduce higher lower associated significant analysis "
    "data sample cohort population children women men age year level high low"
).split()


def synthetic_docs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"_id": f"d{i}", "title": " ".join(rng.choices(WORDS, k=6)),
             "text": " ".join(rng.choices(WORDS, k=rng.randint(60, 260)))}
            for i in range(n)]  # fmt: skip


def synthetic_queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(5, 14))) for _ in range(n)]


def cuda_info() -> dict[str, Any]:
    """torch's CUDA and cuDNN versions, the driver, and the first GPU's properties."""
    import torch

    info: dict[str, Any] = {
        "available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
    }
    if not torch.cuda.is_available():
        return info
    props = torch.cuda.get_device_properties(0)
    info.update(
        name=props.name,
        capability=f"{props.major}.{props.minor}",
        memory_gib=round(props.total_memory / 2**30, 1),
        multiprocessors=props.multi_processor_count,
        cudnn=torch.backends.cudnn.version(),
        bf16=torch.cuda.is_bf16_supported(),
    )
    try:
        smi = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        info["driver"] = subprocess.run(
            smi, capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["driver"] = None
    return info


def half_dtypes(device: str) -> list[str]:
    """The autocast compute dtypes worth timing on `device`."""
    import torch

    if device.startswith("cuda"):
        return ["float16"] + (["bfloat16"] if torch.cuda.is_bf16_supported() else [])
    return ["bfloat16"]


# ---------------------------------------------------------------------- 1. CUDA tests
def step_tests(ctx: Context) -> dict[str, Any]:
    files = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "tests").rglob("test_*.py")
        if "stress" not in p.parts and "cuda" in p.read_text(encoding="utf-8")
    )
    junit = ctx.work / "junit.xml"
    path = [ctx.site, str(REPO), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
           f"--junitxml={junit}"]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=ctx.args.test_timeout
    )
    if not junit.is_file():
        raise RuntimeError(f"pytest wrote no report: {proc.stdout[-800:]}{proc.stderr[-800:]}")
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    cuda_cases, failures = [], []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        child = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}.get(
            child.tag if child is not None else "", "passed"
        )
        counts[outcome] += 1
        message = (child.get("message") or "")[:300] if child is not None else ""
        if outcome in ("failed", "errors"):
            failures.append({"test": name, "message": message})
        if "cuda" in name.lower() or "cuda" in message.lower():
            cuda_cases.append({"test": name, "outcome": outcome, "message": message})
    return {"files": files, "returncode": proc.returncode, **counts, "cuda_tests": cuda_cases,
            "failures": failures, "output_tail": proc.stdout.strip().splitlines()[-6:]}  # fmt: skip


# ---------------------------------------------------------------------- 2. indexing
def step_indexing(ctx: Context) -> dict[str, Any]:
    from latesearch import Index

    corpus, n = ctx.corpus(ctx.args.docs)
    model = ctx.model(ctx.device)
    warm, _ = ctx.corpus(min(n, 32))  # CUDA context, kernels and allocator warmed, untimed
    Index.build(warm, ctx.work / "warm-up", model, progress=False, devices=[ctx.device])
    rows = []
    for dtype in [None, *half_dtypes(ctx.device)]:
        for keep_full in (False, True):
            folder = ctx.work / f"index-{dtype or 'float32'}-{'full' if keep_full else 'codes'}"
            started = time.perf_counter()
            index = Index.build(
                corpus,
                folder,
                model,
                progress=False,
                devices=[ctx.device],
                nbits=2,
                keep_full=keep_full,
                compute_dtype=dtype,
            )
            seconds = time.perf_counter() - started
            manifest = json.loads((folder / "manifest.json").read_text())
            tokens = manifest["stats"]["text_tokens"]
            rows.append({"compute_dtype": dtype or "float32", "fp16_tier": keep_full,
                         "docs": len(index), "tokens": tokens, "seconds": round(seconds, 3),
                         "docs_per_s": round(len(index) / seconds, 1),
                         "tokens_per_s": round(tokens / seconds),
                         "codec_seconds": round(sum(manifest["codec"]["seconds"].values()), 3),
                         "bytes_per_token": round(index.store.nbytes() / tokens, 1)})  # fmt: skip
            if dtype is None and keep_full:
                ctx.index_folder = folder  # the default build: searched in step 3
            else:
                shutil.rmtree(folder, ignore_errors=True)
    return {"documents": n, "nbits": 2, "builds": rows}


# ---------------------------------------------------------------------- 3. search
def step_search(ctx: Context) -> dict[str, Any]:
    from latesearch import Index

    if ctx.index_folder is None:  # the indexing step was skipped or failed
        ctx.index_folder = ctx.work / "index-search"
        Index.build(ctx.corpus(ctx.args.docs)[0], ctx.index_folder, ctx.model(ctx.device),
                    progress=False, devices=[ctx.device])  # fmt: skip
    sides = {
        "device": Index.load(ctx.index_folder, ctx.model(ctx.device), device=ctx.device),
        "cpu": Index.load(ctx.index_folder, ctx.model("cpu"), device="cpu"),
    }
    queries = ctx.queries(max(ctx.args.latency_queries, 32 * ctx.args.batch_calls) + 64)
    rows = []
    for mode in ("e2e", "exact"):
        for k in (10, 100):
            for batch in (1, 32):
                calls = ctx.args.latency_queries if batch == 1 else ctx.args.batch_calls
                texts = [queries[i * batch : (i + 1) * batch] for i in range(calls + 2)]
                samples: dict[str, dict[str, list[float]]] = {
                    side: {"total": [], "encode": [], "search": []} for side in sides
                }
                for i, chunk in enumerate(texts):  # the first two calls warm up, untimed
                    for side, index in sides.items():  # interleaved: load drifts hit both
                        total, encode = timed_search(index, chunk, mode, k)
                        if i >= 2:
                            samples[side]["total"].append(total)
                            samples[side]["encode"].append(encode)
                            samples[side]["search"].append(total - encode)
                row: dict[str, Any] = {"mode": mode, "k": k, "batch": batch, "calls": calls}
                for side in sides:
                    row[side] = {key: summary_ms(v) for key, v in samples[side].items()}
                for key in ("total", "search"):
                    device_ms = row["device"][key]["median"]
                    row[f"cpu_over_device_{key}"] = round(row["cpu"][key]["median"] / device_ms, 2)
                rows.append(row)
    return {"documents": len(sides["cpu"]), "index": "2 bits + fp16 tier (the default build)",
            "rows": rows}  # fmt: skip


def timed_search(index, texts: list[str], mode: str, k: int) -> tuple[float, float]:
    """Milliseconds of one `search` call, and of its query encoding (`last_timings`)."""
    started = time.perf_counter()
    index.search(texts, k=k, mode=mode)
    total = 1000 * (time.perf_counter() - started)
    return total, 1000 * index.last_timings.encode


# ---------------------------------------------------------------------- 4. training
TOPICS = [w for w in WORDS if len(w) > 4]


def write_triples(path: Path, n: int, seed: int = 0) -> Path:
    """Text triples whose positive shares the query's topic words and whose negative does
    not: easy enough that the loss falls within a few steps."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            a, b, c, d = rng.sample(TOPICS, 4)
            filler = lambda: " ".join(rng.choices(WORDS, k=rng.randint(20, 60)))  # noqa: E731
            f.write(
                f"what is known about {a} and {b}\t{a} {b} {filler()} {a}\t{c} {d} {filler()} {c}\n"
            )
    return path


def step_training(ctx: Context) -> dict[str, Any]:
    """Same seed, data and weights (dropout off: its masks come from each device's own
    random stream) on the CPU in float32, on the device in float32, and in bf16 autocast
    when the device supports it, whose longer run also gives examples/s."""
    import torch

    from latesearch import ColBERT

    base = ctx.work / "train-base"
    model = ColBERT.from_pretrained(ctx.model_path, device="cpu")
    model.backbone.config.hidden_dropout_prob = 0.0
    model.backbone.config.attention_probs_dropout_prob = 0.0
    model.save_pretrained(base)
    a = ctx.args
    triples = write_triples(ctx.work / "triples.tsv", 4 * a.train_batch * max(a.train_steps, 1))
    bf16 = torch.cuda.is_bf16_supported() if ctx.device.startswith("cuda") else True
    fast = "bf16" if bf16 else "fp32"
    runs = {
        "cpu-fp32": train_run(ctx, base, triples, "cpu", "fp32", a.compare_steps),
        "device-fp32": train_run(ctx, base, triples, ctx.device, "fp32", a.compare_steps),
        f"device-{fast}": train_run(ctx, base, triples, ctx.device, fast, a.train_steps),
    }
    reference = runs["cpu-fp32"]["losses"]
    checks = {}
    for name in ("device-fp32", f"device-{fast}"):
        losses = runs[name]["losses"][: len(reference)]
        diffs = [abs(x - y) for x, y in zip(losses, reference, strict=True)]
        tol = TOLERANCE[name.split("-")[1]]
        matches = all(d <= tol * (1 + abs(y)) for d, y in zip(diffs, reference, strict=True))
        checks[name] = {"max_abs_diff": max(diffs), "diffs": diffs, "tolerance": tol,
                        "matches_cpu": matches}  # fmt: skip
    losses = runs[f"device-{fast}"]["losses"]
    third = max(1, len(losses) // 3)
    first, last = sum(losses[:third]) / third, sum(losses[-third:]) / third
    return {"batch_size": a.train_batch, "doc_maxlen": a.train_doc_maxlen, "runs": runs,
            "against_cpu": checks, "precision": fast,
            "loss_finite": all(math.isfinite(x) for x in losses),
            "loss_first_third": round(first, 4), "loss_last_third": round(last, 4),
            "loss_decreased": last < first}  # fmt: skip


def train_run(ctx, base: Path, triples: Path, device: str, precision: str, steps: int):
    from latesearch import TrainConfig, train

    records: list[dict[str, Any]] = []
    output = ctx.work / f"train-{device}-{precision}-{steps}"
    config = TrainConfig(triples=str(triples), base_model=str(base), steps=steps,
                         batch_size=ctx.args.train_batch, doc_maxlen=ctx.args.train_doc_maxlen,
                         lr=5e-5, projection_lr=1e-3, seed=12345, device=device,
                         precision=precision, output=str(output), log_every=1)  # fmt: skip
    train(config, progress=lambda record: records.append(dict(record)))
    shutil.rmtree(output, ignore_errors=True)
    losses = [r["loss"] for r in records if "loss" in r]
    skip = min(2, len(records) - 1)  # the first steps load data and warm up
    timed = records[skip:]
    span = timed[-1]["elapsed_s"] - (records[skip - 1]["elapsed_s"] if skip else 0.0)
    examples = len(timed) * ctx.args.train_batch
    return {"device": device, "precision": precision, "steps": len(records),
            "losses": [round(x, 6) for x in losses], "timed_steps": len(timed),
            "examples_per_s": round(examples / span, 1) if span > 0 else None}  # fmt: skip


# ---------------------------------------------------------------------- packing
def pack(args: argparse.Namespace) -> None:
    """Wheels for the GPU machine's Python, the int8-rounded default model and SciFact's
    files, gzipped, into `--pack-dir`; its size against the 64 MiB a call may carry."""
    out = args.pack_dir
    shutil.rmtree(out, ignore_errors=True)
    (out / "wheels").mkdir(parents=True)
    pins = [f"{dist}=={importlib.metadata.version(dist)}" for dist in WHEELS]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", args.python_version,
                    "--implementation", "cp", *platforms, "-d", str(out / "wheels"), *pins],
                   check=True)  # fmt: skip
    model = pack_model(args.model, out / "model")
    for name in ("corpus.jsonl", "queries.jsonl"):
        source = args.data / "scifact" / name
        if source.is_file():
            with open(source, "rb") as f, gzip.open(out / f"{name}.gz", "wb") as g:
                shutil.copyfileobj(f, g)
    info = {"wheels": pins, "python": args.python_version, "model": model}
    (out / "pack.json").write_text(json.dumps(info, indent=2) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True).stdout
    tree = sum(
        (REPO / n).stat().st_size
        for n in tracked.decode().split("\0")
        if n and (REPO / n).is_file()
    )
    print(
        f"{out}: {size / 2**20:.1f} MiB; with the tracked files {(size + tree) / 2**20:.1f} "
        "MiB of the 64 MiB a device call carries"
    )


def pack_model(name: str | None, out: Path) -> dict[str, Any]:
    """The model saved as a checkpoint, its model.safetensors replaced by int8 rows and
    float32 scales (other tensors kept); how close the rounded model's embeddings are."""
    import torch
    from safetensors.torch import load_file, save_file

    from latesearch import ColBERT

    model = ColBERT.from_pretrained(name, device="cpu")
    model.save_pretrained(out)
    weights = out / "model.safetensors"
    packed = {}
    for key, value in load_file(weights).items():
        if value.ndim == 2 and value.is_floating_point():
            scale = value.abs().amax(dim=1).clamp(min=1e-12) / 127
            packed[key] = torch.round(value / scale[:, None]).to(torch.int8)
            packed[f"{key}::scale"] = scale.float()
        else:
            packed[key] = value
    save_file(packed, out / "model.int8.safetensors")
    weights.unlink()
    rounded = ColBERT.from_pretrained(unpack_model(out, out.parent / "unpacked"), device="cpu")
    shutil.rmtree(out.parent / "unpacked")
    docs = [d["text"] for d in synthetic_docs(8)] + synthetic_queries(8)
    agree = [
        float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min())
        for a, b in zip(model.encode_documents(docs), rounded.encode_documents(docs), strict=True)
    ]
    return {
        "from": name or "built-in default",
        "fingerprint": model.fingerprint(),
        "rounding": "int8 per row (2-D weights), float32 scales",
        "min_token_cosine_to_unrounded": round(min(agree), 5),
    }


def unpack_model(packed: Path, out: Path) -> Path:
    """A float32 checkpoint folder from a packed one."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(
        packed, out, ignore=shutil.ignore_patterns("model.int8.safetensors"), dirs_exist_ok=True
    )
    tensors = load_file(packed / "model.int8.safetensors")
    weights = {
        k: (v.float() * tensors[f"{k}::scale"][:, None] if f"{k}::scale" in tensors else v)
        for k, v in tensors.items()
        if not k.endswith("::scale")
    }
    save_file(weights, out / "model.safetensors")
    return out


def install_missing(packed: Path) -> str | None:
    """Install the packed wheels into a scratch folder put first on sys.path, when one of
    their modules is missing here; that folder (for subprocesses), or None."""
    if all(importlib.util.find_spec(module) for module in WHEELS.values()):
        return None
    site = tempfile.mkdtemp(prefix="latesearch-gpu-site-")
    wheels = sorted(str(w) for w in (packed / "wheels").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", "--target", site, *wheels], check=True)  # fmt: skip
    sys.path.insert(0, site)
    importlib.invalidate_caches()
    return site


# ---------------------------------------------------------------------- reporting
def summary_line(step: dict[str, Any]) -> str:
    if not step["ok"]:
        return f"FAILED after {step['seconds']} s: {step['error']}"
    return f"done in {step['seconds']} s"


def markdown(r: dict[str, Any]) -> str:
    cuda = r["cuda"]
    title = "GPU run" if not r["dry_run"] else f"DRY RUN on {r['device']} (not GPU results)"
    lines = [
        f"# {title}: CUDA tests, indexing, search, training",
        "",
        f"Machine: {describe(r['machine'])}; CUDA {cuda.get('torch_cuda')}, driver "
        f"{cuda.get('driver')}, bf16 {cuda.get('bf16')}. Device: {r['device']}. "
        f"Load average {r['load_average_start']} at the start, "
        f"{r.get('load_average_end')} at the end.  ",
        (f"Setup FAILED: {r['setup_error']}.  " if r["setup_error"] else "")
        + f"Model: {model_line(r['model'])}. Data: {r['data']}.  ",
        f"Command: `{r['command']}`",
        "",
    ]
    for name, step in r["steps"].items():
        lines += [f"## {name} ({step['seconds']} s)", ""]
        if not step["ok"]:
            lines += [f"FAILED: `{step['error']}`", ""]
            continue
        lines += globals()[f"_md_{name}"](step) + [""]
    return "\n".join(lines)


def model_line(m: dict[str, Any]) -> str:
    if not m["ok"]:
        return f"FAILED to load: {m['error']}"
    line = f"{m['path']} [{m['fingerprint'][:12]}]"
    if "packed" in m:
        line += (f", packed from {m['packed']['from']} [{m['packed']['fingerprint'][:12]}]: "
                 f"{m['packed']['rounding']}, min token cosine to the unrounded "
                 f"{m['packed']['min_token_cosine_to_unrounded']}")  # fmt: skip
    return line


def _md_tests(s: dict[str, Any]) -> list[str]:
    lines = [
        f"pytest on {', '.join(f'`{f}`' for f in s['files'])}: {s['passed']} passed, "
        f"{s['failed']} failed, {s['errors']} errors, {s['skipped']} skipped.",
        "",
    ]
    lines += [f"- `{c['test']}`: {c['outcome']} {c['message']}".rstrip() for c in s["cuda_tests"]]
    lines += [f"- FAILED `{f['test']}`: {f['message']}" for f in s["failures"]]
    return lines


def _md_indexing(s: dict[str, Any]) -> list[str]:
    lines = [
        f"`Index.build` of {s['documents']} documents at {s['nbits']} bits.",
        "",
        "| compute dtype | fp16 tier | docs/s | tokens/s | s | codec s | bytes/token |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for b in s["builds"]:
        lines.append(
            f"| {b['compute_dtype']} | {'yes' if b['fp16_tier'] else 'no'} | "
            f"{b['docs_per_s']:,.1f} | {b['tokens_per_s']:,} | {b['seconds']} | "
            f"{b['codec_seconds']} | {b['bytes_per_token']} |"
        )
    return lines


def _md_search(s: dict[str, Any]) -> list[str]:
    lines = [
        f"{s['documents']} documents, {s['index']}; ms per call, median / p95 "
        "(encode: query encoding; search: the rest); CPU / device of the medians.",
        "",
        "| mode | k | batch | device total | device encode | device search | "
        "CPU total | CPU encode | CPU search | CPU/device total | CPU/device search |",
        "|---|---:|---:|---|---|---|---|---|---|---:|---:|",
    ]

    def cell(x: dict[str, Any]) -> str:
        return f"{x['median']:.2f} / {x['p95']:.2f}"

    for row in s["rows"]:
        d, c = row["device"], row["cpu"]
        lines.append(
            f"| {row['mode']} | {row['k']} | {row['batch']} | {cell(d['total'])} | "
            f"{cell(d['encode'])} | {cell(d['search'])} | {cell(c['total'])} | "
            f"{cell(c['encode'])} | {cell(c['search'])} | "
            f"{row['cpu_over_device_total']} | {row['cpu_over_device_search']} |"
        )
    return lines


def _md_training(s: dict[str, Any]) -> list[str]:
    lines = [
        f"Batch {s['batch_size']}, doc_maxlen {s['doc_maxlen']}, synthetic triples, dropout off.",
        "",
        "| run | steps | examples/s | losses |",
        "|---|---:|---:|---|",
    ]
    for name, run in s["runs"].items():
        shown = [f"{x:.4f}" for x in run["losses"]]
        losses = ", ".join(shown if len(shown) <= 8 else [*shown[:4], "...", *shown[-3:]])
        lines.append(f"| {name} | {run['steps']} | {run['examples_per_s']} | {losses} |")
    lines.append("")
    for name, check in s["against_cpu"].items():
        lines.append(
            f"- {name} against cpu-fp32, first steps: max |diff| "
            f"{check['max_abs_diff']:.2e} (tolerance {check['tolerance']}): "
            f"{'match' if check['matches_cpu'] else 'MISMATCH'}"
        )
    lines.append(
        f"- {s['precision']} loss finite: {s['loss_finite']}; first third "
        f"{s['loss_first_third']}, last third {s['loss_last_third']}: "
        f"{'decreased' if s['loss_decreased'] else 'DID NOT DECREASE'}"
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
