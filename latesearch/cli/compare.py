"""`latesearch compare`: several TREC runs on the same judgements, each against a baseline,
with a paired randomization test and a bootstrap confidence interval per metric."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latesearch.cli._options import add_subset_options, judged_subset
from latesearch.errors import ConfigError

EPILOG = """\
examples:
  latesearch compare --qrels qrels.txt bm25.trec colbert.trec
  latesearch compare --qrels ../shared/data/scifact/qrels/test.tsv \\
      --exclude-train-qrels ../shared/data/scifact/qrels/train.tsv \\
      raw=runs/raw.trec default=runs/v10.trec --metrics "nDCG@10 R@100" --json

A run is PATH or NAME=PATH (the name defaults to the file's stem); the first is the
baseline unless --baseline names another. Every system is scored on the same queries: the
judged queries that some run answers, a run without one of them scoring 0 there.
p is the two-sided paired randomization (sign-flip) test's; the interval is the bootstrap
percentile interval of the mean difference (other - baseline).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare runs query by query: mean differences, p-values, intervals",
        description="Compare TREC runs on the same judgements, each against a baseline.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", help="TREC run files, PATH or NAME=PATH")
    parser.add_argument("--qrels", required=True, help="judgements file")
    parser.add_argument("--metrics", default="nDCG@10", help='("nDCG@10")')
    parser.add_argument("--baseline", default=None, help="the run compared against (first)")
    add_subset_options(parser, "compare")
    parser.add_argument("--resamples", type=int, default=10_000, help="(10000)")
    parser.add_argument("--confidence", type=float, default=0.95, help="(0.95)")
    parser.add_argument("--seed", type=int, default=0, help="(0)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.data import read_trec_run
    from latesearch.evaluation import parse_metrics
    from latesearch.evaluation.significance import compare_runs

    parse_metrics(args.metrics)  # a bad metric name fails before any file is read
    specs = [_named(spec) for spec in args.runs]
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"two runs are named {duplicate!r}; name them with NAME=PATH")
    data = judged_subset(args)
    result = compare_runs(
        {name: read_trec_run(path) for name, path in specs},  # scoped to data.qrels there
        data.qrels,
        args.metrics,
        baseline=args.baseline,
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
    )
    notes = [*data.notes, *result.notes]
    if args.json:
        print(json.dumps({"data": data.name, **result.to_dict(), "notes": notes}, indent=2))
    else:
        _print_table(result, data.name, notes)
    return 0


def _named(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if sep and name and path:
        return name, path
    return Path(spec).stem, spec


def _print_table(result, data_name: str, notes: list[str]) -> None:
    from latesearch.evaluation import format_table

    interval = f"{round(result.confidence * 100)}% CI"
    rows = []
    for name, means in result.means.items():
        for metric in result.metrics:
            row = {"run": name, "metric": metric, "mean": means[metric]}
            if name == result.baseline:
                row["diff"] = "(baseline)"
            else:
                c = result.comparisons[name][metric]
                row |= {"diff": f"{c.diff:+.4f}", interval: f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
                        "p": f"{c.p_value:.4f}", "wins/losses": f"{c.wins}/{c.losses}"}  # fmt: skip
            rows.append(row)
    print(f"data: {data_name} ({result.n_queries} queries)")
    for note in notes:
        print(f"note: {note}")
    print(format_table(rows))
