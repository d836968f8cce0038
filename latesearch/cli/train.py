"""`latesearch train`: fine-tune a ColBERT model on triples or qrels (one command).

Every option maps onto a `TrainConfig` field; `--config FILE` loads a saved config first
and options given on the command line replace its values. Run under `torchrun` for
multi-GPU data parallelism.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

# (flag, field, type, help); bool fields are flags (--in-batch-negatives / --no-...).
_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--triples", "triples", str, "text triples TSV or id triples JSONL"),
    ("--triples-format", "triples_format", str, "auto | text | ids"),
    ("--collection", "collection", str, "collection (TSV/JSONL) for id triples or qrels"),
    ("--queries", "queries", str, "queries (TSV/JSONL) for id triples or qrels"),
    ("--qrels", "qrels", str, "relevance judgements; negatives are mined"),
    ("--mine-negatives", "mine_negatives", str, "bm25 | index:PATH (with --qrels)"),
    ("--mine-depth", "mine_depth", int, "mine negatives from this many top results"),
    ("--negatives", "negatives_per_query", int, "negatives per query (n-way = 1 + this)"),
    ("--on-error", "on_error", str, "raise | skip bad rows (skipped rows are counted)"),
    ("--base-model", "base_model", str, "starting checkpoint (default: the shipped default model)"),
    ("--query-maxlen", "query_maxlen", int, "query length in tokens"),
    ("--doc-maxlen", "doc_maxlen", int, "document length in tokens"),
    ("--dim", "dim", int, "embedding dimension (new projection)"),
    ("--train-layers", "train_layers", int, "train only the top N layers + projection"),
    (
        "--doc-chunk",
        "doc_chunk",
        int,
        "encode a step's documents in length-sorted chunks of N (CPU: 32, ~2x faster)",
    ),
    (
        "--cache-chunk-size",
        "cache_chunk_size",
        int,
        "cached loss (GradCache): encode at most N texts at a time; bounded memory, same gradients",
    ),
    ("--steps", "steps", int, "optimizer steps"),
    ("--batch-size", "batch_size", int, "queries per step, all ranks together"),
    ("--grad-accum", "grad_accum", int, "micro-batches per step"),
    ("--lr", "lr", float, "learning rate (paper: 3e-6)"),
    ("--projection-lr", "projection_lr", float, "learning rate of the projection"),
    ("--warmup-steps", "warmup_steps", int, "linear warmup steps"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay"),
    ("--max-grad-norm", "max_grad_norm", float, "gradient clipping norm"),
    ("--precision", "precision", str, "auto | fp32 | bf16 | fp16"),
    ("--seed", "seed", int, "random seed"),
    ("--device", "device", str, "cpu, cuda, cuda:1 (default: auto)"),
    ("--anchor-weight", "anchor_weight", float, "L2-SP pull toward the starting weights"),
    ("--distill-from", "distill_from", str, "'triples': KL to the triples' teacher scores"),
    ("--distill-temperature", "distill_temperature", float, "distillation temperature"),
    ("--output", "output", str, "run folder (checkpoints, logs, final model)"),
    ("--save-every", "save_every", int, "checkpoint every N steps (0: at the end only)"),
    ("--keep-last", "keep_last", int, "keep only the newest N checkpoints (0: all)"),
    ("--log-every", "log_every", int, "print progress every N steps"),
    ("--eval-every", "eval_every", int, "dev evaluation every N steps (keeps best/)"),
    ("--dev-queries", "dev_queries", str, "dev queries"),
    ("--dev-qrels", "dev_qrels", str, "dev qrels"),
    ("--dev-collection", "dev_collection", str, "dev collection"),
    ("--dev-split", "dev_split", str, "qrels split of the --dev-beir folders (test)"),
    ("--dev-metric", "dev_metric", str, "nDCG@10 | RR@10: the metric that picks best/"),
    (
        "--dev-average",
        "dev_average",
        str,
        "pooled: mean over dev queries | groups: mean of per-group means, grouped by the "
        "query id's prefix before ':' (picks best/)",
    ),
)
# (flag, field, help) of fields that take several values
_LISTS = (
    ("--dev-beir", "dev_beir", "BEIR-layout dev folders (NanoBEIR-style): each set's metrics "
     "and their mean pick best/"),
)  # fmt: skip
_FLAGS = (
    ("--in-batch-negatives", "in_batch_negatives", "add in-batch negatives"),
    (
        "--gather-across-devices",
        "gather_across_devices",
        "under torchrun: in-batch negatives from every process's micro-batch",
    ),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a ColBERT model on triples or qrels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help="start from a saved TrainConfig JSON")
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue from the latest complete checkpoint in --output",
    )
    for flag, field, kind, text in _OPTIONS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
    for flag, field, text in _LISTS:
        parser.add_argument(flag, dest=field, nargs="+", default=None, help=text)
    for flag, field, text in _FLAGS:
        parser.add_argument(
            flag, dest=field, action=argparse.BooleanOptionalAction, default=None, help=text
        )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The TrainConfig the command line describes (validated)."""
    from latesearch.training.config import TrainConfig

    base = TrainConfig.load(args.config).to_dict() if args.config else {}
    given = {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    for key in (
        "base_model",
        "mine_negatives",
        "distill_from",
        "device",
        "projection_lr",
        "max_grad_norm",
    ):
        if given.get(key) in ("none", "None"):
            given[key] = None
    return TrainConfig.from_dict({**base, **given}, source="command line")


def _print_progress(record: dict[str, Any]) -> None:
    if "eval" in record:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in record["eval"].items())
        print(f"step {record['step']:>7}  dev  {metrics}", file=sys.stderr, flush=True)
        return
    grad = record.get("grad_norm")
    print(
        f"step {record['step']:>7}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
        + (f"grad {grad:.3f}  " if grad is not None else "")
        + f"{record['steps_per_s']:.2f} steps/s",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    from latesearch.training import train

    config = config_from_args(args)
    import os

    main_rank = os.environ.get("RANK", "0") == "0"
    if main_rank:
        print(f"training {config.steps} steps -> {config.output}", file=sys.stderr, flush=True)
    result = train(config, progress=_print_progress if main_rank else None)
    if main_rank:
        print(
            f"done: {result.steps} steps, {result.steps_per_s:.2f} steps/s, "
            f"final model in {result.final}"
            + (f", {result.skipped} bad rows skipped" if result.skipped else ""),
            file=sys.stderr,
        )
        if result.best:
            print(f"best dev checkpoint: {result.output / 'best'} {result.best}", file=sys.stderr)
    return 0
