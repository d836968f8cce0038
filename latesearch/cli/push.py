"""`latesearch push`: upload an index (or a sharded index) to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "push",
        help="upload an index to the Hugging Face Hub as a prebuilt index",
        description="Verify INDEX_DIR (every checksum) and upload it to the dataset repository "
        "REPO with latesearch_hub.json (every file's size and SHA-256, the query model's "
        "reference) and a generated card (README.md). Running it again after an interruption "
        "resumes the upload. Needs huggingface_hub and a token (HF_TOKEN or `hf auth login`).",
    )
    parser.add_argument("index_dir", help="index folder (or sharded index folder)")
    parser.add_argument("repo", help="hub repository id, e.g. user/scifact-latesearch")
    parser.add_argument(
        "--model-repo",
        help="hub id of the query model, when the index's "
        "model is a local folder (publish it first: ColBERT.push_to_hub)",
    )
    parser.add_argument("--model-revision", help="the model repository's commit or tag")
    parser.add_argument(
        "--evaluation",
        type=Path,
        help="JSON object of measures for the "
        'card, e.g. {"dataset": "SciFact test", "nDCG@10": 0.709}, or what '
        "`latesearch evaluate --json` printed",
    )
    parser.add_argument("--collection", help="the collection's name on the card")
    parser.add_argument("--revision", help="branch to push to (default: main)")
    parser.add_argument("--private", action="store_true", help="create a private repository")
    parser.add_argument("--message", default="Upload latesearch index", help="commit message")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch._configio import read_json
    from latesearch.errors import InputError
    from latesearch.indexing import hub
    from latesearch.sharding.manifest import SHARDS_MANIFEST, ShardsManifest

    evaluation = None
    if args.evaluation is not None:
        evaluation = read_json(args.evaluation, error=InputError)
        if not isinstance(evaluation, dict):
            raise InputError("expected a JSON object of measures", path=str(args.evaluation))
    folder = Path(args.index_dir)
    kind = {}
    if (folder / SHARDS_MANIFEST).is_file():
        kind = {"kind": "sharded", "indexes": ShardsManifest.load(folder / SHARDS_MANIFEST).shards}
    url = hub.push(folder, args.repo, model_repo=args.model_repo,
                   model_revision=args.model_revision, evaluation=evaluation,
                   collection=args.collection, revision=args.revision,
                   private=args.private or None, commit_message=args.message, **kind)  # fmt: skip
    print(json.dumps({"repo": args.repo, "commit": url}))
    return 0
