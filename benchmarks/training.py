"""Fine-tuning on real data: train the default backbone on SciFact's training judgements
(negatives mined from BM25) with the `latesearch train` command, then compare the untrained
starting point and the trained model on the SciFact test split (nDCG@10, RR@10), on all
test queries and on SciFact-novel (test queries none of whose relevant documents is judged
in qrels/train.tsv).

    python benchmarks/training.py --steps 200 --batch-size 8 --doc-maxlen 96
    python benchmarks/training.py --reuse      # keep a finished run / built index

Both models are evaluated the same way: the corpus indexed at doc_maxlen 180 (the default
model's), fp16 storage, `Index.search(mode="exact")` (every document scored). The untrained
index is reused read-only from .work/indexes/scifact-default when its fingerprint matches.
Writes benchmarks/results/training-scifact-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe, machine_info  # noqa: E402

METRICS = ["nDCG@10", "RR@10", "R@100"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "scifact-train")
    p.add_argument("--work", type=Path, default=ROOT / ".work" / "train")
    p.add_argument(
        "--baseline-index", type=Path, default=ROOT / ".work" / "indexes" / "scifact-default"
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--doc-maxlen", type=int, default=96, help="document length in training")
    p.add_argument(
        "--index-doc-maxlen",
        type=int,
        default=180,
        help="document length when indexing (both models)",
    )
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--projection-lr", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--negatives", type=int, default=1)
    p.add_argument("--no-in-batch", action="store_true", help="without in-batch negatives")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--device", default=None, help="training device (default: auto)")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep a finished run in --run, a built index and the untrained model's "
        "evaluation in --work",
    )
    p.add_argument("--note", default="", help="a remark recorded with the results")
    p.add_argument(
        "--baseline-only",
        action="store_true",
        help="only evaluate the untrained model (cached in --work)",
    )
    return p.parse_args(argv)


def train_command(args: argparse.Namespace) -> list[str]:
    """The `latesearch train` command line of this benchmark."""
    d = args.data
    cmd = [
        "latesearch", "train", "--qrels", _rel(d / "qrels" / "train.tsv"),
        "--queries", _rel(d / "queries.jsonl"), "--collection", _rel(d / "corpus.jsonl"),
        "--mine-negatives", "bm25", "--negatives", str(args.negatives),
        *([] if args.no_in_batch else ["--in-batch-negatives"]),
        "--output", _rel(args.run), "--steps", str(args.steps),
        "--batch-size", str(args.batch_size), "--doc-maxlen", str(args.doc_maxlen),
        "--lr", f"{args.lr:g}", "--projection-lr", f"{args.projection_lr:g}",
        "--warmup-steps", str(args.warmup_steps), "--save-every", "50", "--keep-last", "2",
        "--log-every", "10", "--seed", str(args.seed),
    ]  # fmt: skip
    return cmd + (["--device", args.device] if args.device else [])


def _rel(path: Path) -> str:
    """`path` relative to the working directory (as typed at a shell there)."""
    return os.path.relpath(path)


def check_same_run(cmd: list[str], run: Path) -> None:
    """A reused run must be the one `cmd` describes (same TrainConfig)."""
    from latesearch.cli.main import build_parser
    from latesearch.cli.train import config_from_args

    wanted = config_from_args(build_parser().parse_args(cmd[1:])).to_dict()
    saved = json.loads((run / "train_config.json").read_text())
    changed = sorted(k for k in wanted if k != "resume" and wanted[k] != saved.get(k))
    if changed:
        raise SystemExit(f"{run} was trained with other settings: {changed}")


def run_training(args: argparse.Namespace, cmd: list[str]) -> float | None:
    """Run `cmd` (unless --reuse finds the finished run); its wall time in seconds."""
    final = args.run / "final"
    if args.reuse and (final / "COMPLETE").is_file():
        check_same_run(cmd, args.run)
        print(f"reusing the finished run in {args.run}", flush=True)
        return None
    if args.run.exists():
        raise SystemExit(f"{args.run} exists: remove it, or pass --reuse to keep it")
    exe = shutil.which("latesearch")
    argv = [exe, *cmd[1:]] if exe else [sys.executable, "-m", "latesearch", *cmd[1:]]
    print("$ " + shlex.join(cmd), flush=True)
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"training: {wall:.0f} s wall, {usage.ru_utime + usage.ru_stime:.0f} s CPU", flush=True)
    return wall


def loss_summary(run: Path, window: int = 20) -> dict[str, Any]:
    """Mean loss per window of steps, and the trainer's own steps/s."""
    records = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    windows = []
    for start in range(0, len(records), window):
        part = records[start : start + window]
        windows.append({
            "steps": f"{part[0]['step']}-{part[-1]['step']}",
            "mean_loss": round(statistics.fmean(r["loss"] for r in part), 4),
        })  # fmt: skip
    # a resumed run restarts the trainer's clock: add up the segments
    seconds, segments = 0.0, 1
    for prev, cur in zip(records, records[1:], strict=False):
        if cur["elapsed_s"] < prev["elapsed_s"]:
            seconds, segments = seconds + prev["elapsed_s"], segments + 1
    seconds += records[-1]["elapsed_s"]
    last = records[-1]
    return {
        "steps": last["step"],
        "train_seconds": round(seconds, 1),
        "segments": segments,
        "steps_per_s": round(last["step"] / seconds, 4),
        "examples_per_s": round(last["examples"] / seconds, 3),
        "loss_windows": windows,
    }


def trained_index(args: argparse.Namespace, model_dir: Path):
    from latesearch import Index
    from latesearch.modeling import ColBERT

    folder = args.work / "scifact-trained"
    fingerprint = ColBERT.from_pretrained(model_dir, device="cpu").fingerprint()
    manifest = folder / "manifest.json"
    if (
        args.reuse
        and manifest.is_file()
        and (json.loads(manifest.read_text())["model_fingerprint"] == fingerprint)
    ):
        print(f"reusing the index in {folder}", flush=True)
        return Index.load(folder), None
    started = time.perf_counter()
    index = Index.build(
        args.data / "corpus.jsonl",
        folder,
        str(model_dir),
        ann=False,
        overwrite=True,
        precision=16,
        doc_maxlen=args.index_doc_maxlen,
    )
    return index, time.perf_counter() - started


def evaluate(index, eval_sets: list[Any]) -> dict[str, Any]:
    """Exact search of every test query; metrics on each evaluation set."""
    from latesearch.evaluation.metrics import evaluate_run

    full = eval_sets[0]
    qids = list(full.queries)
    started = time.perf_counter()
    hits = index.search([full.queries[q] for q in qids], k=100, mode="exact")
    seconds = time.perf_counter() - started
    run = {q: {h.doc_id: h.score for h in found} for q, found in zip(qids, hits, strict=True)}
    out: dict[str, Any] = {"search_seconds": round(seconds, 2)}
    for data in eval_sets:
        result = evaluate_run({q: run[q] for q in data.queries}, data.qrels, METRICS)
        out[data.name] = {
            "queries": result.n_queries,
            **{k: round(v, 4) for k, v in result.aggregate.items()},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from latesearch import Index
    from latesearch.evaluation.datasets import load_eval_set, restrict_eval_set
    from latesearch.modeling import ColBERT

    cmd = train_command(args)
    wall = None if args.baseline_only else run_training(args, cmd)
    full = load_eval_set(args.data)
    full.name = "scifact-test"
    novel = restrict_eval_set(full, exclude_train_qrels=args.data / "qrels" / "train.tsv")
    novel.name = "scifact-novel"
    sets = [full, novel]

    baseline_fp = ColBERT.from_pretrained(None, device="cpu").fingerprint()
    manifest = json.loads((args.baseline_index / "manifest.json").read_text())
    if manifest["model_fingerprint"] != baseline_fp:
        raise SystemExit(f"{args.baseline_index} was not built with the default model")
    if manifest["colbert_config"]["doc_maxlen"] != args.index_doc_maxlen:
        raise SystemExit(
            f"{args.baseline_index} has doc_maxlen "
            f"{manifest['colbert_config']['doc_maxlen']}, not {args.index_doc_maxlen}"
        )
    cached = args.work / "untrained-eval.json"
    if args.reuse and cached.is_file() and (
        json.loads(cached.read_text()).get("fingerprint") == baseline_fp
    ):
        print(f"reusing the untrained model's evaluation in {cached}", flush=True)
        before = json.loads(cached.read_text())["evaluation"]
    else:
        print("evaluating the untrained default model...", flush=True)
        before = evaluate(Index.load(args.baseline_index), sets)
        args.work.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({"fingerprint": baseline_fp, "evaluation": before}))
    if args.baseline_only:
        print(json.dumps(before, indent=2))
        return 0
    summary = loss_summary(args.run)
    index, index_seconds = trained_index(args, args.run / "final")
    print("evaluating the trained model...", flush=True)
    after = evaluate(index, sets)

    machine = machine_info()
    payload = {
        "benchmark": "training-scifact",
        "machine": machine,
        "machine_description": describe(machine),
        "load_average_at_end": os.getloadavg(),
        "command": shlex.join(cmd),
        "note": args.note,
        "train_config": json.loads((args.run / "train_config.json").read_text()),
        "training": {**summary, "wall_seconds": None if wall is None else round(wall, 1)},
        "evaluation": {
            "protocol": f"corpus indexed at doc_maxlen {args.index_doc_maxlen}, fp16, "
            "Index.search(mode='exact', k=100)",
            "untrained": {
                "model": "built-in default (all-MiniLM-L6-v2 ColBERT format)",
                "index": str(args.baseline_index),
                **before,
            },
            "trained": {
                "model": str(args.run / "final"),
                "index": str(index.folder),
                "index_seconds": index_seconds and round(index_seconds, 1),
                **after,
            },
        },
    }
    device = "cuda" if machine.get("gpu") else "cpu"
    write(args.out, f"training-scifact-{device}", payload)
    return 0


def markdown(p: dict[str, Any]) -> str:
    t, ev = p["training"], p["evaluation"]
    rows = []
    for name in ("scifact-test", "scifact-novel"):
        b, a = ev["untrained"][name], ev["trained"][name]
        for metric in METRICS:
            rows.append(
                f"| {name} ({b['queries']} q) | {metric} | {b[metric]:.4f} | "
                f"{a[metric]:.4f} | {a[metric] - b[metric]:+.4f} |"
            )
    curve = ", ".join(f"{w['steps']}: {w['mean_loss']:.3f}" for w in t["loss_windows"])
    load = ", ".join(f"{x:.1f}" for x in p["load_average_at_end"])
    return "\n".join([
        "## Fine-tuning on SciFact (training judgements, BM25 negatives)",
        "",
        f"Machine: {p['machine_description']} (shared with other jobs; load average at the "
        f"end {load}).",
        "",
        "```",
        p["command"],
        "```",
        "",
        *([p["note"], ""] if p.get("note") else []),
        f"Training: {t['steps']} steps in {t['train_seconds']:.0f} s = "
        f"**{t['steps_per_s']:.3f} steps/s** ({t['examples_per_s']:.2f} queries/s).",
        "",
        f"Loss (mean per window of steps): {curve}.",
        "",
        f"Evaluation: {ev['protocol']}.",
        "",
        "| queries | metric | untrained | trained | change |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip


def write(out: Path, stem: str, payload: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for suffix, text in (
        (".json", json.dumps(payload, indent=2) + "\n"),
        (".md", markdown(payload)),
    ):
        target = out / f"{stem}{suffix}"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    print(f"wrote {out / stem}.json and .md", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
