"""`latesearch compress`: a compressed copy of an uncompressed index, without encoding."""

from __future__ import annotations

import argparse

from latesearch.cli.index import DEFAULT
from latesearch.indexing.config import NEW_CODEC


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compress",
        help="write a compressed copy of an uncompressed index (no encoding)",
        description="Read the vectors of the uncompressed index SOURCE and write TARGET, "
        "the same documents as centroid codes and quantized residuals searched by the "
        "engine (bm25/ is carried over). SOURCE is left as it is.",
    )
    parser.add_argument("source", help="an uncompressed index folder (format 1)")
    parser.add_argument("target", help="folder to create")
    parser.add_argument("--nbits", type=int, choices=(1, 2, 4), default=None,
                        help=f"bits/dim ({NEW_CODEC['nbits']})")  # fmt: skip
    parser.add_argument("--keep-full", dest="keep_full", action="store_true", default=None,
                        help="also keep the fp16 vectors (~300 B/token)"
                        f"{DEFAULT[NEW_CODEC['keep_full']]}")  # fmt: skip
    parser.add_argument("--no-keep-full", dest="keep_full", action="store_false",
                        help="keep no uncompressed vectors (<= 40 B/token)"
                        f"{DEFAULT[not NEW_CODEC['keep_full']]}")  # fmt: skip
    parser.add_argument("--pool-factor", type=int, default=None,
                        help="pool each document's token vectors to about 1/N first (1: none; "
                        f"default {NEW_CODEC['pool_factor']})")  # fmt: skip
    parser.add_argument("--n-centroids", type=int, default=None, help="default: by size")
    parser.add_argument("--codec-from", default=None,
                        help="reuse the centroids and buckets of this compressed index"
                        )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace TARGET")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.indexing import compress_index

    extra = {"n_centroids": args.n_centroids} if args.n_centroids else {}
    if args.pool_factor is not None:
        extra["pool_factor"] = args.pool_factor
    store = compress_index(
        args.source, args.target, nbits=args.nbits, keep_full=args.keep_full,
        codec_from=args.codec_from, overwrite=args.overwrite, progress=not args.quiet, **extra,
    )  # fmt: skip
    codec = store.manifest.codec or {}
    print(f"{store.folder}: {store.n_docs:,} documents, {store.n_embeddings:,} tokens, "
          f"{codec.get('n_centroids')} centroids, {codec.get('nbits')} bits; "
          f"{store.nbytes() / max(store.n_embeddings, 1):.1f} bytes per token on disk")  # fmt: skip
    store.close()
    return 0
