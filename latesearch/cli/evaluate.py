"""`latesearch evaluate`: search an index with judged queries and score the run, or score
any TREC run file (metrics by ir-measures)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from latesearch.cli._options import (
    add_search_options,
    add_subset_options,
    judged_subset,
    load_kwargs,
    search_request,
)
from latesearch.errors import InputError
from latesearch.evaluation.presets import PRESETS
from latesearch.search.modes import mode_names

MODES = (*mode_names(), "bm25")  # and BM25 alone (no model)
DEFAULT_METRICS = "MRR@10 R@50 R@100 nDCG@10 AP"
PROGRESS_BATCH = 16  # queries per search call at most: the progress bar moves this often

EPILOG = """\
examples:
  latesearch evaluate INDEX --queries queries.tsv --qrels qrels.txt --mode rerank
  latesearch evaluate INDEX --queries ../shared/data/scifact --split test --json
  latesearch evaluate INDEX --queries ../shared/data/scifact \\
      --exclude-train-qrels ../shared/data/scifact/qrels/train.tsv      # SciFact-novel
  latesearch evaluate --run run.trec --qrels qrels.txt
  latesearch evaluate --preset nanobeir --sets ../nanobeir --model MODEL    # per set + mean

--queries is a query file (qid<TAB>text TSV, BEIR queries.jsonl, TREC topics) or a BEIR
folder (queries.jsonl + qrels/<split>.tsv; --qrels then optional). --qrels reads TREC
(qid 0 docid rel), BEIR TSV (with header) and qid<TAB>docid lists; graded judgements are
used as nDCG gains, binary metrics count rel >= 1. Queries without any judgement are not
searched and are counted. --mode bm25 scores the index's BM25 component alone. AP and
other metrics without a cutoff are computed over the top k (-k).

--preset nanobeir indexes each BEIR folder of --sets (a folder of them expands to its
sub-folders) with --model (in --index-root, reused when already built there; else in a
temporary folder), searches its test queries and prints nDCG@10 per set and the mean
over sets, as NanoBEIR reports it.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score an index (or a run file) against relevance judgements",
        description="Search INDEX_DIR with every judged query and evaluate the run, or "
        "evaluate an existing TREC run (--run without INDEX_DIR).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("index_dir", nargs="?", default=None, help="index folder")
    parser.add_argument("--queries", default=None, help="query file or BEIR folder")
    parser.add_argument("--qrels", default=None, help="judgements file")
    parser.add_argument("--split", default=None, help="BEIR split (test)")
    parser.add_argument("--topic-field", default="title", choices=("title", "desc", "narr"),
                        help="TREC topics: the field used as query text (title)")  # fmt: skip
    parser.add_argument("--mode", choices=MODES, default="e2e", help="search mode (e2e)")
    parser.add_argument("--metrics", default=None,
                        help=f'("{DEFAULT_METRICS}"; a preset\'s own)')  # fmt: skip
    parser.add_argument("-k", type=int, default=None,
                        help="results per query (default: 100, or the metrics' deepest "
                        "cutoff above it: 1000 for R@1000)")  # fmt: skip
    parser.add_argument(
        "--run", default=None, help="with INDEX_DIR: write the run here; without: run to score"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a benchmark of several BEIR sets (see below)")  # fmt: skip
    parser.add_argument("--sets", nargs="+", default=None, metavar="FOLDER",
                        help="--preset: BEIR folders, or folders of them")  # fmt: skip
    parser.add_argument("--index-root", default=None,
                        help="--preset: where each set's index is built (and reused)")  # fmt: skip
    add_subset_options(parser, "evaluate")
    parser.add_argument(
        "--include-missing",
        action="store_true",
        help="judged queries absent from the run score 0 (trec_eval -c)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--per-query", action="store_true", help="JSON: per-query values too")
    add_search_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.evaluation import evaluate_run, ranking_depth

    if args.preset is not None:
        from latesearch.cli._presets import run_preset

        return run_preset(args)
    args.metrics = args.metrics or DEFAULT_METRICS
    args.split = args.split or "test"
    depth = ranking_depth(args.metrics)  # a bad metric name fails before any search
    args.k = depth if args.k is None else args.k
    if args.index_dir is None:
        return _score_run_file(args)
    if args.queries is None:
        raise InputError("--queries is needed to evaluate an index", field="queries")
    data = _eval_set(args)
    if not data.queries:
        raise InputError("no judged query to evaluate", field="queries")
    run_map, info = _search(args, data)
    if args.run is not None:
        from latesearch.data import write_trec_run

        ranked = {q: sorted(d.items(), key=lambda x: -x[1]) for q, d in run_map.items()}
        write_trec_run(args.run, ranked, tag=f"latesearch-{args.mode}")
        info["run_file"] = args.run
    result = evaluate_run(run_map, data.qrels, args.metrics, include_missing=args.include_missing)
    _report(args, result, data.name, data.notes, data.n_unjudged, info)
    return 0


def _eval_set(args: argparse.Namespace) -> Any:
    from latesearch.evaluation.datasets import load_eval_set, restrict_eval_set

    data = load_eval_set(args.queries, args.qrels, split=args.split, topic_field=args.topic_field)
    return restrict_eval_set(
        data, query_ids=args.query_ids, exclude_train_qrels=args.exclude_train_qrels
    )


def _search(args: argparse.Namespace, data: Any) -> tuple[dict, dict[str, Any]]:
    from latesearch.index import Index

    request = None if args.mode == "bm25" else search_request(args)  # checked before loading
    index = Index.load(args.index_dir, args.model, **load_kwargs(args))
    return _search_index(args, index, data, request)


def search_set(args: argparse.Namespace, index: Any, folder: Any, split: str
               ) -> tuple[Any, dict, dict[str, Any]]:  # fmt: skip
    """A BEIR folder's judged queries of `split`, searched in `index`: (eval set, run,
    timings)."""
    from latesearch.evaluation.datasets import load_eval_set

    data = load_eval_set(folder, split=split)
    request = None if args.mode == "bm25" else search_request(args)
    run_map, info = _search_index(args, index, data, request)
    return data, run_map, info


def _search_index(args: argparse.Namespace, index: Any, data: Any, request: Any
                  ) -> tuple[dict, dict[str, Any]]:  # fmt: skip
    from latesearch.evaluation.runner import run_queries

    if args.mode == "bm25":
        bm25 = index.searcher.bm25

        def search(texts: list[str]) -> list[list[tuple[str, float]]]:
            return bm25.search(texts, args.k)
    else:

        def search(texts: list[str]) -> list[list[tuple[str, float]]]:
            hits = index.search(texts, request=request)
            return [[(h.doc_id, h.score) for h in row] for row in hits]

    batch = min(args.batch_size, PROGRESS_BATCH)
    result = run_queries(
        search, data.queries, batch_size=batch, progress=not args.quiet,
        desc=f"evaluate ({args.mode})",
    )  # fmt: skip
    info = {"index": str(index.folder), "mode": args.mode, "k": args.k,
            "searched_queries": result.n_queries, "seconds": round(result.seconds, 3),
            "ms_per_query": round(result.ms_per_query, 2),
            "batch_size": batch}  # fmt: skip
    return result.run, info


def _score_run_file(args: argparse.Namespace) -> int:
    from latesearch.data import read_trec_run
    from latesearch.evaluation import evaluate_run

    if args.run is None or (args.qrels is None and args.queries is None):
        raise InputError("give INDEX_DIR, or --run RUN with --qrels QRELS", field="run")
    run_map = read_trec_run(args.run)
    # a BEIR folder or query file: the judged queries of its split; else the qrels alone
    data = _eval_set(args) if args.queries is not None else judged_subset(args)
    if args.queries is not None or args.query_ids or args.exclude_train_qrels:
        run_map = {q: docs for q, docs in run_map.items() if q in data.qrels}  # the subset
    result = evaluate_run(run_map, data.qrels, args.metrics, include_missing=args.include_missing)
    _report(args, result, f"{args.run} on {data.name}", data.notes, 0, {"run_file": args.run})
    return 0


def _report(args, result, name: str, notes: list[str], n_unjudged: int, info: dict) -> None:
    from latesearch.evaluation import format_table

    notes = [*notes, *result.notes]
    if args.json:
        out = {"data": name, **info, **result.to_dict(per_query=args.per_query),
               "n_unjudged_queries": n_unjudged + result.n_skipped_unjudged,
               "notes": notes}  # fmt: skip
        print(json.dumps(_finite(out), indent=2))
        return
    print(f"data: {name}")
    for key in ("index", "mode", "run_file"):
        if key in info:
            print(f"{key}: {info[key]}")
    if "ms_per_query" in info:
        print(f"searched {info['searched_queries']} queries in {info['seconds']:.1f} s ("
              f"{info['ms_per_query']:.1f} ms/query, batches of {info['batch_size']})")  # fmt: skip
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(format_table([result.row()]))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
