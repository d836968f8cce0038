"""`latesearch index`: encode a collection once into an on-disk index."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Any

from latesearch.indexing.config import NEW_CODEC

DEFAULT = {True: " (default)", False: ""}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "index",
        help="encode a collection into an on-disk index",
        description="Encode every document of COLLECTION once and store the index in "
        "INDEX_DIR (built in INDEX_DIR.building, renamed on success; --resume continues "
        "an interrupted build).",
    )
    parser.add_argument(
        "collection",
        help="MS MARCO TSV, BEIR JSONL (or folder), or TREC SGML file; or a folder of .txt, "
        ".md, .html, .jsonl and .tsv files (see `update --sync`)",
    )
    parser.add_argument("index_dir", help="folder to create")
    parser.add_argument("--model", default=None, help="checkpoint folder (default: built-in)")
    parser.add_argument("--doc-maxlen", type=int, default=None, help="tokens per document")
    parser.add_argument("--window", type=int, default=None, metavar="TOKENS",
                        help="split long documents into overlapping windows of TOKENS text "
                        "tokens (default: off, truncate at --doc-maxlen)")  # fmt: skip
    parser.add_argument("--window-stride", type=int, default=None, metavar="TOKENS",
                        help="--window: tokens from one window's start to the next (half a "
                        "window)")  # fmt: skip
    parser.add_argument("--max-windows", type=int, default=None,
                        help="--window: most windows a document (64)")  # fmt: skip
    parser.add_argument("--max-docs", type=int, default=None,
                        help="most documents the index may hold (builds, updates)")  # fmt: skip
    parser.add_argument("--filter-field", dest="filter_fields", action="append", default=None,
                        metavar="FIELD", help="give metadata FIELD a field index: filters on "
                        "it cost what they select (repeat for more fields)")  # fmt: skip
    parser.add_argument("--nbits", default=None, choices=("1", "2", "4", "none"),
                        help=f"residual bits per dimension ({NEW_CODEC['nbits']}); none: "
                        "uncompressed vectors")  # fmt: skip
    parser.add_argument("--keep-full", dest="keep_full", action="store_true", default=None,
                        help="compressed: also keep the fp16 vectors, to re-score the final "
                        f"candidates exactly (~300 B/token){DEFAULT[NEW_CODEC['keep_full']]}"
                        )  # fmt: skip
    parser.add_argument("--no-keep-full", dest="keep_full", action="store_false",
                        help="compressed: keep no uncompressed vectors (<= 40 B/token)"
                        f"{DEFAULT[not NEW_CODEC['keep_full']]}")  # fmt: skip
    parser.add_argument("--n-centroids", type=int, default=None,
                        help="compressed: centroids (default: 2^floor(log2(16 sqrt(tokens))))"
                        )  # fmt: skip
    parser.add_argument("--pool-factor", type=int, default=None,
                        help="pool each document's token vectors to about 1/N (1: none; "
                        f"default {NEW_CODEC['pool_factor']})")  # fmt: skip
    parser.add_argument("--precision", type=int, choices=(16, 32), default=16,
                        help="bits per value of uncompressed vectors (16)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None, help="documents per batch (b)")
    parser.add_argument("--group-size", type=int, default=None, help="documents per group (B)")
    parser.add_argument("--chunk-size", type=int, default=None, help="documents per chunk file")
    parser.add_argument("--checkpoint-docs", type=int, default=None,
                        help="save progress at least every N documents (5000; 0: off)")  # fmt: skip
    parser.add_argument("--checkpoint-seconds", type=float, default=None,
                        help="... and about every S seconds of encoding (120; 0: off)")  # fmt: skip
    parser.add_argument("--devices", default=None, help="e.g. cuda:0,cuda:1 (default: all)")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                        help="encode on a Ray cluster: the one running (or a new local one) "
                        "without ADDRESS; 'local'; or e.g. ray://head:10001")  # fmt: skip
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="--ray: encoder actors (default: one per GPU, else per CPU)"
                        )  # fmt: skip
    parser.add_argument("--ray-cpus-per-worker", type=int, default=None,
                        help="--ray: CPUs (and torch threads) of each actor (1)")  # fmt: skip
    parser.add_argument("--ray-transport", choices=("object_store", "shared"), default=None,
                        help="--ray: encoded documents come back through Ray's object store "
                        "(default), or as files in the index folder every node mounts")  # fmt: skip
    parser.add_argument("--shards", type=int, default=None,
                        help="build a sharded index of N ordinary indexes (ShardedIndex)"
                        )  # fmt: skip
    parser.add_argument("--parallel-shards", action="store_true",
                        help="--shards with --ray: build every shard at once, each in a Ray "
                        "task on any node (the index folder on storage every node mounts)"
                        )  # fmt: skip
    parser.add_argument("--tokenizer-workers", type=int, default=None, help="0: no threads")
    parser.add_argument(
        "--no-length-bucketing", action="store_true", help="keep collection order in batches"
    )
    parser.add_argument(
        "--compute-dtype", choices=("float16", "bfloat16"), default=None, help="autocast"
    )
    parser.add_argument("--title-join", default=None, help="between title and text (' ')")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad rows")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted build")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index")
    parser.add_argument("--bm25", action="store_true", help="also build a BM25 index")
    parser.add_argument("--dense", choices=("pooled", "backbone"), default=None,
                        help="also store a pooled dense vector per document (the dense and "
                        "fused search modes): the model's own pooled states, or its original "
                        "backbone's sentence embedding (an extra pass)")  # fmt: skip
    parser.add_argument("--dense-model", default=None,
                        help="--dense backbone: a sentence-transformers folder (default: the "
                        "default model's backbone)")  # fmt: skip
    parser.add_argument("--no-ann", action="store_true",
                        help="uncompressed: skip the faiss IVFPQ index (e2e then unavailable)"
                        )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def index_config(args: argparse.Namespace) -> Any:
    """The IndexConfig the arguments describe (defaults for what is not given)."""
    from latesearch.indexing import IndexConfig

    changes: dict[str, Any] = {
        "precision": args.precision,
        "on_error": "skip" if args.skip_bad_rows else "raise",
        "length_bucketing": not args.no_length_bucketing,
    }
    if args.nbits is not None:
        changes["nbits"] = None if args.nbits == "none" else int(args.nbits)
    for name in (
        "doc_maxlen",
        "window",
        "window_stride",
        "max_windows",
        "max_docs",
        "filter_fields",
        "batch_size",
        "group_size",
        "chunk_size",
        "tokenizer_workers",
        "compute_dtype",
        "title_join",
        "n_centroids",
        "pool_factor",
        "keep_full",
        "dense",
        "dense_model",
        "ray",
        "ray_workers",
        "ray_cpus_per_worker",
        "ray_transport",
    ):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    for name in ("checkpoint_docs", "checkpoint_seconds"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value or None  # 0: no such limit
    if args.devices:
        changes["devices"] = [d.strip() for d in args.devices.split(",") if d.strip()]
    return IndexConfig().replace(**changes)


def component_builders(args: argparse.Namespace) -> list[Any]:
    """BM25 / ANN builders from the `latesearch.index` façade, when it provides them."""
    want_ann = False if args.no_ann else None  # None: with an uncompressed index only
    if not args.bm25 and want_ann is False:
        return []
    try:
        facade = import_module("latesearch.index")
        make = facade.component_builders
    except (ModuleNotFoundError, AttributeError):
        print("latesearch index: note: BM25/ANN components are not available in this "
              "version; built the embedding index only", file=sys.stderr)  # fmt: skip
        return []
    return list(make(bm25=args.bm25, ann=want_ann))


def run(args: argparse.Namespace) -> int:
    from latesearch.data import check_collection
    from latesearch.indexing import build_index

    config = index_config(args)
    check_collection(args.collection, on_error=config.on_error)  # before the model loads
    if args.shards is not None:
        return _run_sharded(args, config)
    store = build_index(
        args.collection,
        args.index_dir,
        args.model,
        config,
        overwrite=args.overwrite,
        resume=args.resume,
        progress=not args.quiet,
        extra_builders=component_builders(args),
    )
    print_summary(store.summary, str(store.folder))
    return 0


def print_summary(summary: Any, folder: str) -> None:
    """The end-of-build summary, as a table where `rich` is installed."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(f"index written to {folder}\n{summary}")
        return
    table = Table(title=f"index written to {folder}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in summary.rows():
        table.add_row(label, value)
    Console().print(table)


def _run_sharded(args: argparse.Namespace, config: Any) -> int:
    from latesearch.sharding import ShardedIndex

    index = ShardedIndex.build(
        args.collection, args.index_dir, args.model, n_shards=args.shards, config=config,
        bm25=args.bm25, ann=False if args.no_ann else None, overwrite=args.overwrite,
        resume=args.resume, progress=not args.quiet, parallel_shards=args.parallel_shards,
    )  # fmt: skip
    print(f"{index.folder}: {len(index):,} documents in {index.manifest.n_shards} shards "
          f"({', '.join(index.manifest.shards)})")  # fmt: skip
    index.close()
    return 0
