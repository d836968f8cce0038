"""`latesearch delete`: remove documents from an index (or a server's) by id or by filter."""

from __future__ import annotations

import argparse
import json
import sys

from latesearch.cli.update import read_ids
from latesearch.errors import InputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "delete",
        help="delete documents by id or by metadata filter",
        description="Delete the documents IDS, or every document whose metadata match "
        "--filter (the search filter language), from INDEX_DIR in one atomic update (a "
        "sharded index: one per shard), or from the server at a URL (needs its API key). "
        "A bad filter is refused, naming its field, before anything changes.",
    )
    parser.add_argument("index_dir", help="index folder, or a server's URL")
    parser.add_argument("ids", nargs="*", metavar="ID", help="ids to delete")
    parser.add_argument(
        "--filter",
        default=None,
        metavar="JSON",
        help='delete the documents matching it, e.g. {"year": {"$lt": 2000}}',
    )
    parser.add_argument("--ids-file", default=None, metavar="FILE",
                        help="ids to delete, one per line ('-': standard input)")  # fmt: skip
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip ids the index lacks (default: error, nothing deleted)",
    )
    parser.add_argument("--api-key", default=None,
                        help="a server's API key (default: $LATESEARCH_API_KEY)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ids = list(args.ids) + (read_ids(args.ids_file) if args.ids_file else [])
    if bool(ids) == (args.filter is not None):
        raise InputError("give either ids to delete or --filter", field="--filter")
    spec = None
    if args.filter is not None:
        from latesearch.indexing.filters import compile_filter, parse_filter

        spec = parse_filter(args.filter)
        compile_filter(spec)  # checked before anything loads
    missing = "skip" if args.skip_missing else "raise"
    if args.index_dir.startswith(("http://", "https://")):
        from latesearch.client import Client

        with Client(args.index_dir, api_key=args.api_key) as client:
            result = client.delete(ids or None, filter=spec, missing=missing)
        summary, docs = result.summary, result.documents
    else:
        summary, docs = _delete_here(args.index_dir, ids, spec, missing)
    if args.json:
        print(json.dumps({"summary": summary, "documents": docs}, indent=2))
    else:
        print(f"{args.index_dir}: deleted {summary.get('deleted', 0):,}; the index now holds "
              f"{docs:,} documents")  # fmt: skip
        if summary.get("unknown"):
            print(f"not in the index (skipped): {len(summary['unknown'])} id(s), e.g. "
                  f"{summary['unknown'][0]!r}", file=sys.stderr)  # fmt: skip
    return 0


def _delete_here(folder: str, ids: list[str], spec: object, missing: str) -> tuple[dict, int]:
    from latesearch.cli._options import open_index
    from latesearch.indexing import UnknownDocumentError

    args = argparse.Namespace(model=None, device="cpu", no_check_model=False, backend="torch",
                              onnx_precision="fp32", onnx_threads=None, ray=None)  # fmt: skip
    index = open_index(folder, args)  # no model is loaded to delete
    try:
        summary = index.delete(ids or None, filter=spec, missing=missing)
    except UnknownDocumentError as err:
        raise InputError(
            f"{err}; nothing was changed (--skip-missing deletes the ids the "
            "index holds and ignores the others)",
            field="ids",
        ) from None
    return summary.to_dict(), summary.docs
