"""Evaluation of runs with ir-measures (trec_eval semantics)."""

from latesearch.evaluation.metrics import (
    EvalResult,
    evaluate_run,
    format_table,
    parse_metric,
    parse_metrics,
    split_metrics,
)

__all__ = [
    "EvalResult",
    "evaluate_run",
    "format_table",
    "parse_metric",
    "parse_metrics",
    "split_metrics",
]
