"""`latesearch update`: add documents to an index and delete documents from it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latesearch.errors import InputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "update",
        help="add documents to an index, delete documents from it",
        description="Delete the given ids from INDEX_DIR and add the documents of --add, in "
        "one atomic step: the index is staged in INDEX_DIR.updating and renamed into place "
        "when complete, so an interruption leaves it as it was. New documents are encoded "
        "with the index's model; bm25/ and ann/ are updated (the ANN index is appended to, "
        "not retrained).",
    )
    parser.add_argument("index_dir", help="index folder (from `latesearch index`)")
    parser.add_argument("--add", default=None, metavar="COLLECTION",
                        help="documents to add (MS MARCO TSV, BEIR JSONL, TREC SGML)")  # fmt: skip
    parser.add_argument("--replace", action="store_true",
                        help="an added id the index holds replaces that document")  # fmt: skip
    parser.add_argument("--sync", default=None, metavar="FOLDER",
                        help="the folder of documents the index was built from: add new "
                        "files, replace changed ones (modification time or size), delete "
                        "removed ones")  # fmt: skip
    parser.add_argument("--delete", nargs="+", default=[], metavar="ID", help="ids to delete")
    parser.add_argument("--delete-file", default=None, metavar="FILE",
                        help="ids to delete, one per line ('-': standard input)")  # fmt: skip
    parser.add_argument("--skip-missing", action="store_true",
                        help="skip ids to delete the index lacks (default: error)")  # fmt: skip
    parser.add_argument("--model", default=None, help="encoder (default: the index's)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def read_ids(path: str) -> list[str]:
    """Ids one per line (surrounding whitespace stripped, blank lines skipped)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read ids ({err})", path=path) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _check_added(args: argparse.Namespace) -> None:
    """The collection to add: there, readable, and its first record good (or skipped, as
    the index's own `on_error` does)."""
    from latesearch.data import check_collection
    from latesearch.indexing.manifest import Manifest

    on_error = Manifest.read(args.index_dir).index_config.get("on_error", "raise")
    check_collection(args.add, on_error=on_error)


def run(args: argparse.Namespace) -> int:
    from latesearch.index import Index

    delete = list(args.delete) + (read_ids(args.delete_file) if args.delete_file else [])
    if args.sync is not None:
        if args.add is not None or delete:
            raise InputError("--sync takes no --add or --delete", field="--sync")
        return _sync(args)
    if args.add is None and not delete:
        raise InputError("give --add COLLECTION and/or ids to --delete", field="--add")
    from latesearch.indexing import UnknownDocumentError

    if args.add is not None:
        _check_added(args)  # before the model loads (seconds)
    index = Index.load(args.index_dir, args.model, device=args.device)
    try:
        summary = index.update(
            add=args.add,
            delete=delete,
            replace=args.replace,
            missing="skip" if args.skip_missing else "raise",
            progress=not args.quiet,
        )
    except UnknownDocumentError as err:
        raise InputError(f"{err}; nothing was changed (--skip-missing deletes the ids the "
                         "index holds and ignores the others)", field="--delete") from None
    _print(args, summary)
    return 0


def _sync(args: argparse.Namespace) -> int:
    from latesearch.data.folders import is_document_folder
    from latesearch.index import Index

    folder = Path(args.sync)
    if not is_document_folder(folder):
        raise InputError("not a folder of documents", path=str(folder), field="--sync")
    from latesearch.sharding.manifest import SHARDS_MANIFEST

    if (Path(args.index_dir) / SHARDS_MANIFEST).is_file():
        from latesearch.sharding import ShardedIndex

        index = ShardedIndex.load(args.index_dir, args.model, device=args.device)
    else:
        index = Index.load(args.index_dir, args.model, device=args.device)
    _print(args, index.sync(folder, progress=not args.quiet))
    return 0


def _print(args: argparse.Namespace, summary) -> None:
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(f"{args.index_dir}: {summary}")
        if summary.unknown:
            print(f"not in the index (skipped): {len(summary.unknown)} id(s), e.g. "
                  f"{summary.unknown[0]!r}", file=sys.stderr)  # fmt: skip
