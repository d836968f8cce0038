"""`latesearch pull`: download a prebuilt index from the Hugging Face Hub, verified."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pull",
        help="download a prebuilt index from the Hugging Face Hub, verified",
        description="Download the index of REPO into FOLDER. Every file is checked against "
        "latesearch_hub.json (size and SHA-256) and each index against its own checksums and "
        "the query model's fingerprint before FOLDER appears; a partial or tampered download "
        "is refused and removed. An interrupted download resumes when run again. The "
        "referenced query model is downloaded too, and the index names it.",
    )
    parser.add_argument("repo", help="hub repository id")
    parser.add_argument("folder", help="where the index goes")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace FOLDER if it holds an index")  # fmt: skip
    parser.add_argument("--no-model", action="store_true",
                        help="do not download the query model")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.indexing import hub

    folder = hub.pull(args.repo, args.folder, revision=args.revision,
                      overwrite=args.overwrite, fetch_model=not args.no_model)  # fmt: skip
    pulled = hub.provenance(folder)["hub"]
    print(json.dumps({"folder": str(folder), "kind": pulled["kind"],
                      "n_docs": pulled["n_docs"], "files": len(pulled["files"]),
                      "model": pulled["model"]}))  # fmt: skip
    return 0
