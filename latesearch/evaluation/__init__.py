"""Evaluation of runs with ir-measures (trec_eval semantics)."""

from latesearch.evaluation.metrics import (
    EvalResult,
    evaluate_run,
    format_table,
    parse_metric,
    parse_metrics,
    ranking_depth,
    split_metrics,
)
from latesearch.evaluation.significance import (
    PairedComparison,
    RunComparison,
    compare_runs,
    paired_comparison,
)
from latesearch.evaluation.subsets import novel_queries, read_query_ids, relevant_docs, restrict

__all__ = [
    "EvalResult",
    "PairedComparison",
    "RunComparison",
    "compare_runs",
    "evaluate_run",
    "format_table",
    "parse_metric",
    "parse_metrics",
    "novel_queries",
    "paired_comparison",
    "ranking_depth",
    "read_query_ids",
    "relevant_docs",
    "restrict",
    "split_metrics",
]
