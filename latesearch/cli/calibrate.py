"""`latesearch calibrate`: fit the probability of relevance of a hit from its score on
judged queries, and keep it with the index (hits then carry `relevance`; searches take
`--min-relevance`)."""

from __future__ import annotations

import argparse
import json

from latesearch.cli._options import add_model_options, open_index
from latesearch.errors import InputError
from latesearch.search.modes import mode_names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="fit score -> probability of relevance on judged queries, kept with the index",
        description="Search INDEX_DIR for every judged query of --queries, label its top "
        "--depth hits with --qrels, fit a monotone (isotonic) mapping from the bounded score "
        "(MaxSim per query token) to the probability of relevance, and store it in the "
        "index (calibration/). Fit it on queries you do not evaluate on.",
    )
    parser.add_argument("index_dir", help="index folder (from `latesearch index`; sharded too)")
    parser.add_argument("--queries", required=True, help="queries (TSV, BEIR JSONL, TREC)")
    parser.add_argument("--qrels", required=True, help="judgements (TREC or BEIR qrels)")
    maxsim = [m for m in mode_names() if m not in ("hybrid", "dense", "fused")]
    parser.add_argument("--mode", choices=maxsim, default="e2e", help="search mode (e2e)")
    parser.add_argument("--depth", type=int, default=100, help="hits per query labelled (100)")
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.data import read_qrels, read_queries
    from latesearch.indexing.components.calibration import expected_calibration_error

    if args.depth < 1:
        raise InputError(f"--depth must be >= 1, got {args.depth}", field="depth")
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    index = open_index(args.index_dir, args)  # an Index or a ShardedIndex
    fitted = index.calibrate(queries, qrels, mode=args.mode, depth=args.depth)
    if args.json:
        print(json.dumps(fitted.to_dict(), indent=2))
        return 0
    hits = index.search([queries[q] for q in queries if qrels.get(q)], k=args.depth,
                        mode=args.mode)  # fmt: skip
    judged = [q for q in queries if qrels.get(q)]
    pairs = [(h.relevance, qrels[q].get(h.doc_id, 0) > 0)
             for q, found in zip(judged, hits, strict=True) for h in found]  # fmt: skip
    ece = expected_calibration_error(*zip(*pairs, strict=True))
    print(f"calibrated {index.folder} ({args.mode}): {fitted.queries} queries, {fitted.pairs} "
          f"hits, {fitted.positives} relevant; {len(fitted.scores)} breakpoints; expected "
          f"calibration error on these queries {ece:.4f} (in-sample)")  # fmt: skip
    return 0
