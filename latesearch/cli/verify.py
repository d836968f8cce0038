"""`latesearch verify`: re-hash every checksummed file of an index."""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check an index's files against the checksums in its manifest",
        description="Open INDEX_DIR (the cheap checks: manifest, file sizes, headers, doc "
        "store) and re-hash every file against its checksum: each chunk's arrays, the ids, "
        "doc store, codec and inverted file (the manifest), and each component's files (its "
        "checksums.json). Reads the whole index once (about the time of reading its size "
        "from disk). Exit code 0 when it is intact, 2 naming the first damaged file "
        "otherwise. Files an older latesearch wrote without a checksum are listed.",
    )
    parser.add_argument("index_dir", help="index folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.indexing import IndexStore

    started = time.perf_counter()
    with IndexStore.open(args.index_dir) as store:
        report = store.verify()
        chunks = len(store.manifest.chunks)
    seconds = time.perf_counter() - started
    print(f"{args.index_dir}: intact ({store.n_docs:,} documents, {chunks} chunks; "
          f"{report.files} files, {report.bytes / 2**20:,.1f} MiB hashed in "
          f"{seconds:.1f} s)")  # fmt: skip
    if report.unchecked:
        shown = ", ".join(report.unchecked[:8]) + (" ..." if len(report.unchecked) > 8 else "")
        print(f"{len(report.unchecked)} file(s) have no checksum (written by an older "
              f"latesearch; an update or rebuild records them): {shown}")  # fmt: skip
    return 0
