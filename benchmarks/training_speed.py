"""Training step time with and without `doc_chunk` (length-sorted document chunks), in the
same process, alternating the settings so that a noisy machine affects both alike.

The workload is the default model's training recipe (docs/model.md): id triples with teacher
scores, 16 queries x 12 documents per step, doc_maxlen 128, top 3 layers trained, L2-SP
anchor, listwise distillation, on data made by the rebuild's data step
(`scripts/default_model/`). Steps after the first of each run are timed (the first loads
data and warms up).

    python benchmarks/training_speed.py --data .work/dm/data14 --triples weak.jsonl \
        --base-model .work/dm/start8 --chunks 0 32 --repeats 2 --steps 6

Writes benchmarks/results/training-speed-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO / ".work" / "dm" / "data14",
                   help="folder with collection.jsonl, queries.tsv and the triples")
    p.add_argument("--triples", default="weak.jsonl", help="triples file inside --data")
    p.add_argument("--base-model", default=None, help="starting checkpoint (default backbone)")
    p.add_argument("--chunks", type=int, nargs="+", default=[0, 32],
                   help="doc_chunk settings to compare (0: one batch, the default)")
    p.add_argument("--repeats", type=int, default=2, help="runs per setting, interleaved")
    p.add_argument("--steps", type=int, default=6, help="steps per run (the first untimed)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--negatives", type=int, default=11)
    p.add_argument("--doc-maxlen", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.steps < 2 or args.repeats < 1 or min(args.chunks) < 0:
        p.error("--steps >= 2, --repeats >= 1 and --chunks >= 0")
    for name in ("collection.jsonl", "queries.tsv", args.triples):
        if not (args.data / name).is_file():
            p.error(f"{args.data / name} not found: build it with scripts/default_model/"
                    "rebuild.sh (docs/model.md)")
    return args


def one_run(args: argparse.Namespace, chunk: int, folder: Path) -> list[float]:
    """Seconds per step of one short run (steps 2..N)."""
    from latesearch import TrainConfig, train
    from latesearch.training import checkpointing as ckpt

    config = TrainConfig(
        triples=str(args.data / args.triples), collection=str(args.data / "collection.jsonl"),
        queries=str(args.data / "queries.tsv"), negatives_per_query=args.negatives,
        distill_from="triples", base_model=args.base_model, output=str(folder),
        steps=args.steps, batch_size=args.batch_size, lr=3e-5, projection_lr=1e-4,
        doc_maxlen=args.doc_maxlen, train_layers=3, anchor_weight=1.0, log_every=0,
        seed=12345, device=args.device, doc_chunk=chunk or None,
    )
    train(config)
    records = ckpt.JsonlLog(folder / ckpt.LOSS_LOG).read()
    elapsed = [r["elapsed_s"] for r in records]
    return [b - a for a, b in zip(elapsed[:-1], elapsed[1:], strict=True)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    steps: dict[int, list[float]] = {chunk: [] for chunk in args.chunks}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            order = args.chunks if repeat % 2 == 0 else args.chunks[::-1]
            for chunk in order:
                times = one_run(args, chunk, Path(tmp) / f"r{repeat}-c{chunk}")
                steps[chunk] += times
                print(f"doc_chunk {chunk or 'off'}: {statistics.median(times):.2f} s/step")
    base = statistics.median(steps[args.chunks[0]])
    rows = []
    for chunk, times in steps.items():
        median = statistics.median(times)
        rows.append({
            "doc_chunk": chunk or None, "median_s_per_step": round(median, 3),
            "min_s_per_step": round(min(times), 3), "timed_steps": len(times),
            "documents_per_s": round(args.batch_size * (1 + args.negatives) / median, 2),
            "speedup_vs_first": round(base / median, 2),
        })
    info = machine_info()
    result = {
        "benchmark": "training_speed", "machine": info,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
    }
    device = "gpu" if args.device.startswith("cuda") else "cpu"
    lines = [
        f"# Training step time, doc_chunk on and off ({describe(info)})", "",
        f"{args.batch_size} queries x {1 + args.negatives} documents per step, doc_maxlen "
        f"{args.doc_maxlen}, top 3 layers, distillation, data {args.data.name}/{args.triples}; "
        f"{args.repeats} interleaved runs of {args.steps} steps per setting, the first step "
        "of each untimed.", "",
        "| doc_chunk | median s/step | min s/step | documents/s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['doc_chunk'] or 'off (one batch)'} | {r['median_s_per_step']} | "
                     f"{r['min_s_per_step']} | {r['documents_per_s']} | "
                     f"{r['speedup_vs_first']}x |")
    write_results(args.out, f"training-speed-{device}", result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
