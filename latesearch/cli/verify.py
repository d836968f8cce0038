"""`latesearch verify`: re-hash every checksummed file of an index."""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check an index's files against the checksums in its manifest",
        description="Open INDEX_DIR (the cheap checks: manifest, sizes, headers, doc store) "
        "and re-hash every file the manifest has a checksum for: the vectors, codes and "
        "residuals of each chunk and the codec. Reads the whole index once (about the time "
        "of reading its size from disk). Exit code 0 when it is intact, 2 naming the first "
        "damaged file otherwise.",
    )
    parser.add_argument("index_dir", help="index folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.indexing import IndexStore

    started = time.perf_counter()
    with IndexStore.open(args.index_dir) as store:
        store.verify()
        size = sum(f.stat().st_size for f in store.folder.rglob("*") if f.is_file())
        chunks = len(store.manifest.chunks)
    seconds = time.perf_counter() - started
    print(f"{args.index_dir}: intact ({store.n_docs:,} documents, {chunks} chunks, "
          f"{size / 2**20:,.1f} MiB checked in {seconds:.1f} s)")  # fmt: skip
    return 0
