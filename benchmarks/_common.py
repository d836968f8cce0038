"""Shared pieces of the benchmark scripts: collections, indexes, baselines, result files.

Run the scripts from the repository root (`python benchmarks/table2.py`); data default to
../shared/data (`--data` to change), indexes are reused from .work/indexes/ when they were
built with the same model (checked by fingerprint), else built under .work/eval/indexes/.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe, machine_info  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # scripts run from a checkout import latesearch from it
    sys.path.insert(1, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
WORK = REPO / ".work" / "eval"
# the paper's format on the default backbone: [Q]/[D] markers, [MASK] augmentation, a seeded
# orthogonal 128-d head, untrained; PyLate and colbert-ai load it with identical embeddings
COLBERT_FORMAT = REPO / ".work" / "models" / "colbert-format"
# the same format with a trained head, as every ColBERT checkpoint people run has: 150 steps
# of `latesearch train` from COLBERT_FORMAT on SciFact's training judgements (not its test
# queries), BM25 negatives; made by make_colbert_format_trained when missing
COLBERT_FORMAT_TRAINED = REPO / ".work" / "models" / "colbert-format-trained"
PREBUILT = REPO / ".work" / "indexes"
COLLECTIONS = ("scifact", "vaswani")
DEMO = REPO / "latesearch" / "resources" / "demo"
PYDOCS = REPO / "scripts" / "default_model" / "data" / "pydocs-dev.tsv"


def demo_queries() -> list[str]:
    """The demo's 20 queries and the 108 pydocs questions over the same collection (TSV
    with `#` comments; the question is the second column)."""
    texts = []
    for path in (DEMO / "queries.tsv", PYDOCS):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                texts.append(line.split("\t")[1])
    return texts


@dataclass
class Collection:
    """A test collection: corpus, queries and judgements (and training judgements, whose
    overlap defines the "novel" subset)."""

    name: str
    corpus: Path
    queries: Path
    qrels: Path | None
    train_qrels: Path | None = None

    def eval_sets(self) -> list[Any]:
        """The full test set, plus its novel subset when training judgements exist."""
        from latesearch.evaluation.datasets import load_eval_set, restrict_eval_set

        full = load_eval_set(self.queries, self.qrels)
        full.name = self.name
        sets = [full]
        if self.train_qrels is not None:
            novel = restrict_eval_set(full, exclude_train_qrels=self.train_qrels)
            novel.name = f"{self.name}-novel"
            sets.append(novel)
        return sets


def collection(name: str, data: Path) -> Collection:
    if name == "scifact":
        root = data / "scifact"
        return Collection(name, root / "corpus.jsonl", root, None, root / "qrels" / "train.tsv")
    if name == "vaswani":
        root = data / "vaswani"
        return Collection(name, root / "doc-text.trec", root / "query-text.trec", root / "qrels")
    raise SystemExit(f"unknown collection {name!r}; expected one of {COLLECTIONS}")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=None, help="ColBERT checkpoint (default: built-in)")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--collections", nargs="+", default=list(COLLECTIONS), choices=COLLECTIONS)
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--latency-queries", type=int, default=100,
                   help="queries timed one at a time per method (100)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    return p


_THREADS: list[int] = []


def setup(args: argparse.Namespace) -> None:
    """Remember --threads: applied after the model is loaded (the default model's seeded
    orthogonal projection differs in its last bits with the thread count, which would
    change its fingerprint and so not match the prebuilt indexes)."""
    import torch

    torch.manual_seed(0)
    if args.threads:
        _THREADS.append(args.threads)


def load_model(model: str | None):
    """The built-in default (None) or a checkpoint; COLBERT_FORMAT is made when missing."""
    import torch

    from latesearch.modeling import ColBERT

    missing = not COLBERT_FORMAT.exists()
    if model is not None and missing and Path(model).resolve() == COLBERT_FORMAT:
        make_colbert_format()
    trained = COLBERT_FORMAT_TRAINED / "final"
    if model is not None and Path(model).resolve() == trained and not trained.exists():
        make_colbert_format_trained()
    loaded = ColBERT.from_pretrained(model, device="cpu")
    if _THREADS:
        torch.set_num_threads(_THREADS[-1])
    return loaded


def make_colbert_format() -> Path:
    """Save the backbone in the paper's ColBERT format (ColBERTConfig's defaults) to
    COLBERT_FORMAT, in the colbertv2.0 layout."""
    from latesearch.modeling import ColBERT
    from latesearch.modeling.default import backbone_path

    ColBERT.from_pretrained(str(backbone_path()), device="cpu").save_pretrained(COLBERT_FORMAT)
    return COLBERT_FORMAT


def make_colbert_format_trained(data: Path = REPO.parent / "shared" / "data") -> Path:
    """Train COLBERT_FORMAT_TRAINED (about 7 minutes on 2 CPU cores); its final model."""
    import subprocess

    if not COLBERT_FORMAT.exists():
        make_colbert_format()
    scifact = data / "scifact"
    subprocess.run(
        [sys.executable, "-m", "latesearch", "train", "--base-model", str(COLBERT_FORMAT),
         "--qrels", str(scifact / "qrels" / "train.tsv"),
         "--queries", str(scifact / "queries.jsonl"),
         "--collection", str(scifact / "corpus.jsonl"), "--mine-negatives", "bm25",
         "--negatives", "1", "--in-batch-negatives", "--output", str(COLBERT_FORMAT_TRAINED),
         "--steps", "150", "--batch-size", "8", "--doc-chunk", "32", "--lr", "2e-05",
         "--projection-lr", "0.001", "--warmup-steps", "15", "--save-every", "50",
         "--keep-last", "1", "--log-every", "10", "--seed", "12345", "--device", "cpu"],
        check=True,
    )  # fmt: skip
    return COLBERT_FORMAT_TRAINED / "final"


def model_label(model: str | None, colbert: Any) -> str:
    """'default (built-in, untrained projection)' or the checkpoint path, plus fingerprint."""
    name = "built-in default" if model is None else str(model)
    return f"{name} [{colbert.fingerprint()[:12]}]"


def colbert_index(coll: Collection, colbert: Any, *, progress: bool = True):
    """An uncompressed index of `coll` built with `colbert` (bm25 + ann): a prebuilt one
    whose fingerprint matches, else one built (once) under .work/eval/indexes/."""
    from latesearch.index import Index

    fingerprint = colbert.fingerprint()
    candidates = [
        PREBUILT / f"{coll.name}-default",
        WORK / "indexes" / f"{coll.name}-{fingerprint[:12]}",
    ]
    for folder in candidates:
        manifest = folder / "manifest.json"
        if (
            manifest.is_file()
            and json.loads(manifest.read_text())["model_fingerprint"] == fingerprint
        ):
            return Index.load(folder, colbert)
    if os.environ.get("LATESEARCH_BENCH_BUILD") != "1":
        raise SystemExit(
            f"no {coll.name} index built with model {fingerprint[:12]} in {candidates}; "
            "set LATESEARCH_BENCH_BUILD=1 to build one (minutes to hours on CPU)"
        )
    print(f"building the {coll.name} index for model {fingerprint[:12]} (once)...", flush=True)
    return Index.build(
        coll.corpus, candidates[-1], colbert, bm25=True, nbits=None, progress=progress
    )  # the paper's uncompressed store, with ann/


def engine_index(coll: Collection, index: Any, nbits: int = 2, *, keep_full: bool = False):
    """The compressed copy of a prebuilt uncompressed `index` (`compress_index`, no encoding),
    made once under .work/eval/engine/ and reused while its source is the same."""
    from latesearch.index import Index
    from latesearch.indexing import compress_index

    fingerprint = index.store.manifest.model_fingerprint
    folder = WORK / "engine" / f"{coll.name}-{fingerprint[:12]}-nbits{nbits}"
    folder = folder.with_name(folder.name + "-full") if keep_full else folder
    manifest = folder / "manifest.json"
    if manifest.is_file():
        stats = json.loads(manifest.read_text()).get("stats", {})
        if stats.get("compressed_from") == str(index.folder):
            return Index.load(folder, index.model)
    compress_index(index.folder, folder, nbits=nbits, keep_full=keep_full, overwrite=True)
    return Index.load(folder, index.model)


def dense_index(coll: Collection, encoder: Any, *, progress: bool = True):
    """The dense baseline's document vectors for `coll`, encoded once and cached."""
    from _dense_baseline import DOC_IDS_FILE, DenseBaseline

    from latesearch.data import read_collection

    folder = WORK / "dense-baseline" / coll.name
    if (folder / DOC_IDS_FILE).is_file():
        return DenseBaseline.load(folder)
    started = time.perf_counter()
    docs = ((d.doc_id, d.full_text()) for d in read_collection(coll.corpus))
    index = DenseBaseline.build(docs, encoder, progress=progress)
    index.save(folder)
    print(f"dense {coll.name}: {len(index)} docs in {time.perf_counter() - started:.0f} s")
    return index


def measure(search, sets: list[Any], sample: list[str], metrics: str, index=None) -> dict:
    """Run every query of sets[0] (batched) and evaluate on each set; then time `sample`
    one query per call (after 2 warm-up calls), with the index's per-stage means."""
    from latesearch.evaluation import evaluate_run
    from latesearch.evaluation.runner import latency_ms, run_queries

    result = run_queries(search, sets[0].queries, batch_size=32)
    effectiveness = {s.name: evaluate_run(result.run, s.qrels, metrics).aggregate for s in sets}
    stages = dict.fromkeys(("encode", "candidates", "interaction", "gather", "score"), 0.0)
    candidates = []

    def timed(texts: list[str]):
        out = search(texts)
        if index is not None and index.last_timings is not None:
            for key in stages:
                stages[key] += getattr(index.last_timings, key)
            candidates.append(index.last_timings.n_candidates)
        return out

    latency = latency_ms(timed, sample, warmup=2)
    row = {"effectiveness": effectiveness, "latency_ms": latency,
           "throughput_ms_per_query": result.ms_per_query}  # fmt: skip
    if index is not None and candidates:  # sums include the warm-up calls
        row["latency_stages_ms"] = {k: 1000 * v / len(candidates) for k, v in stages.items()}
        row["scored_docs_per_query"] = float(sum(candidates) / len(candidates))
    return row


def ranking(hits: Any) -> list[tuple[str, float]]:
    return [(h.doc_id, h.score) for h in hits]


def write_results(out: Path, stem: str, payload: dict[str, Any], markdown: str) -> None:
    """benchmarks/results/<stem>.json and <stem>.md, each written atomically. A markdown
    that names no `python benchmarks/...` command gets this run's command appended, so that
    every table says how to regenerate it."""
    out.mkdir(parents=True, exist_ok=True)
    if "python benchmarks/" not in markdown:
        markdown = markdown.rstrip("\n") + f"\n\nRegenerate with: `{command()}`\n"
    write_text(out / f"{stem}.json", json.dumps(payload, indent=2) + "\n")
    write_text(out / f"{stem}.md", markdown)
    print(f"wrote {out / stem}.json and .md")


def write_text(target: Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` whole: a temporary file beside it, then os.replace."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


def command() -> str:
    """This run's command line, as `python benchmarks/<script>.py ARGS` from the repository
    root."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(REPO):
        script = script.relative_to(REPO)
    return " ".join(["python", shlex.quote(str(script)), *map(shlex.quote, sys.argv[1:])])


def summary_ms(values: list[float]) -> dict[str, float]:
    """Median and 95th percentile (nearest rank) of millisecond samples, and their count."""
    if not values:
        return {"median": float("nan"), "p95": float("nan"), "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered), 3), "p95": round(p95, 3),
            "n": len(ordered)}  # fmt: skip


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def header(title: str, machine: dict[str, Any], model: str, extra: str = "") -> str:
    lines = [f"## {title}", "", f"Machine: {describe(machine)}.  ", f"Model: {model}.  "]
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


__all__ = ["describe", "machine_info"]
