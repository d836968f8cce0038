"""Command-line options shared by the commands that search an index."""

from __future__ import annotations

import argparse
from typing import Any

from latesearch.errors import InputError
from latesearch.search.fusion import FUSIONS
from latesearch.search.request import BY_NAME, OPTIONS, SearchRequest

# the search options every searching command takes, from `SearchRequest`'s table
CLI_OPTIONS = tuple(option.name for option in OPTIONS if option.cli)
ALIASES = {"centroid_score_threshold": ("--t-cs",)}
CHOICES = {"fusion": FUSIONS}


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """The request's search options (`latesearch.search.request.OPTIONS`: engine, faiss,
    BM25 depth, filter, fusion), batching, model and device."""
    for name in CLI_OPTIONS:
        option = BY_NAME[name]
        flag = "--" + name.replace("_", "-")
        kind = str if option.kind is dict else option.kind  # a filter is JSON text
        default = f" ({option.default})" if option.default is not None else ""
        parser.add_argument(flag, *ALIASES.get(name, ()), dest=name, type=kind, default=None,
                            choices=CHOICES.get(name), metavar="JSON" if option.kind is dict
                            else None, help=option.help + default)  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64, help="queries per batch (64)")
    add_model_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def search_request(args: argparse.Namespace, **extra: Any) -> SearchRequest:
    """The `SearchRequest` the command's flags make (checked before any model loads)."""
    options = {name: getattr(args, name) for name in CLI_OPTIONS}
    return SearchRequest.of(k=args.k, mode=args.mode, batch_size=args.batch_size, **options,
                            **extra)  # fmt: skip


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The query encoder of an index (default: the one it was built with) and its device."""
    parser.add_argument("--model", default=None, help="query encoder (default: the index's)")
    parser.add_argument("--no-check-model", action="store_true", help="skip fingerprint check")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="query encoder runtime: torch, or onnx (ONNX Runtime on CPU, "
                        "exported once and cached; needs latesearch[onnx])")  # fmt: skip
    parser.add_argument("--onnx-precision", choices=("fp32", "int8"), default="fp32",
                        help="onnx: fp32 (same rankings) or int8 (faster, approximate)")
    parser.add_argument("--onnx-threads", type=int, default=None,
                        help="onnx: intra-op threads (default: torch's thread count)")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                        help="a sharded index: its shards in Ray actors (the cluster running, "
                        "or a new local one, without ADDRESS; 'local'; or ray://head:10001)")


def open_index(folder: str, args: argparse.Namespace) -> Any:
    """An `Index`, or a `ShardedIndex` where `folder` holds one (its shards in Ray actors
    with --ray)."""
    from pathlib import Path

    from latesearch.sharding.manifest import SHARDS_MANIFEST

    if (Path(folder) / SHARDS_MANIFEST).is_file():
        from latesearch.sharding import ShardedIndex

        return ShardedIndex.load(folder, args.model, ray=getattr(args, "ray", None),
                                 device=args.device, check_model=not args.no_check_model)
    if getattr(args, "ray", None):
        raise InputError(f"{folder}: --ray serves sharded indexes (latesearch index --shards)",
                         field="ray")  # fmt: skip
    from latesearch.index import Index

    return Index.load(folder, args.model, **load_kwargs(args))


def load_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The `Index.load` keyword arguments the model options set."""
    return {"device": args.device, "check_model": not args.no_check_model,
            "backend": args.backend, "onnx_precision": args.onnx_precision,
            "onnx_threads": args.onnx_threads}  # fmt: skip


def add_subset_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """--query-ids and --exclude-train-qrels: the judged queries a command `verb`s."""
    parser.add_argument(
        "--query-ids", default=None, help=f"{verb} only the query ids listed in this file"
    )
    parser.add_argument(
        "--exclude-train-qrels",
        default=None,
        metavar="TRAIN_QRELS",
        help=f"{verb} only queries none of whose relevant documents is relevant in "
        "TRAIN_QRELS (e.g. SciFact-novel)",
    )


def judged_subset(args: argparse.Namespace) -> object:
    """The EvalSet of --qrels restricted by the subset options (no query texts)."""
    from latesearch.data import read_qrels
    from latesearch.evaluation.datasets import EvalSet, restrict_eval_set

    return restrict_eval_set(
        EvalSet({}, read_qrels(args.qrels), args.qrels),
        query_ids=args.query_ids,
        exclude_train_qrels=args.exclude_train_qrels,
    )
