"""Retrieval metrics, computed by ir-measures (trec_eval semantics through pytrec_eval).

Metric names (aliases are case-insensitive; any other name goes to ``ir_measures`` as is):

- ``MRR@k``, ``RR@k``: reciprocal rank of the first relevant document in the top k
  (MS MARCO's MRR@10 is ``RR@10`` with rel >= 1 relevant, MS MARCO qrels being level 1);
- ``R@k``, ``Recall@k``: recall at k;
- ``nDCG@k``: nDCG at k, the graded judgements being the (linear, trec_eval) gains;
- ``AP``, ``MAP`` (``AP@k``, ``MAP@k``): average precision;
- ``P@k``, ``Precision@k``: precision at k;
- trec_eval names: ``recip_rank``, ``map``, ``ndcg_cut_10``, ``recall_100``, ``P_10``...

Binary metrics count rel >= 1 as relevant (pass ``RR(rel=2)@10`` etc. for another level).

Ranking: documents are ranked by score, descending; ties are broken as trec_eval does
(document id, descending). Ranks, not raw scores, are handed to ir-measures, so every
metric sees the same ranking whichever backend computes it.

Query scope (trec_eval conventions, stated in the result). A query is judged when the qrels
hold at least one judgement for it (any grade, 0 included: such a query scores 0).
- a run query without any judgement in the qrels is skipped and counted
  (``n_skipped_unjudged``), or an error when ``skip_unjudged_queries=False``;
- a judged query absent from the run is counted (``n_missing_run``) and left out of the
  means, unless ``include_missing=True`` (trec_eval ``-c``): then it scores 0 on every
  metric. The official MS MARCO script divides by every query of the qrels, i.e. it
  corresponds to ``include_missing=True``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import ir_measures

from latesearch.errors import ConfigError, InputError

Run = Mapping[str, Mapping[str, float]] | Iterable[tuple[str, str, float]]
Qrels = Mapping[str, Mapping[str, int]] | Iterable[tuple[str, str, int]]

_ALIASES = {
    "mrr": "RR",
    "rr": "RR",
    "r": "R",
    "recall": "R",
    "ndcg": "nDCG",
    "ap": "AP",
    "map": "AP",
    "p": "P",
    "precision": "P",
    "success": "Success",
    "recip_rank": "RR",
}
_TREC_EVAL = re.compile(r"^(ndcg_cut|recall|p|map_cut|success)_(\d+)$", re.IGNORECASE)
_TREC_EVAL_NAMES = {
    "ndcg_cut": "nDCG",
    "recall": "R",
    "p": "P",
    "map_cut": "AP",
    "success": "Success",
}
_TOKEN = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<params>\(.*\))?(?:@(?P<cutoff>.+))?$")
_EXAMPLES = "MRR@10, RR@10, R@100, Recall@100, nDCG@10, AP, MAP, P@5 or an ir_measures name"


def split_metrics(spec: str | Sequence[str]) -> list[str]:
    """Metric names from "MRR@10 R@50, nDCG@10" (spaces/commas outside parentheses) or a
    list of names; duplicates are dropped, order kept."""
    if isinstance(spec, str):
        tokens, depth, current = [], 0, ""
        for char in spec:
            depth += (char == "(") - (char == ")")
            if depth == 0 and (char.isspace() or char == ","):
                tokens.append(current)
                current = ""
            else:
                current += char
        tokens.append(current)
    else:
        tokens = [str(t) for t in spec]
    names = list(dict.fromkeys(t.strip() for t in tokens if t.strip()))
    if not names:
        raise ConfigError(f"no metric given in {spec!r}; expected e.g. {_EXAMPLES}")
    return names


def parse_metric(token: str, *, spec: str | None = None) -> Any:
    """One ir_measures measure from a metric name (see the module's alias table)."""
    where = f" in metrics {spec!r}" if spec is not None and spec != token else ""
    text = token.strip()
    trec = _TREC_EVAL.match(text)
    if trec:
        text = f"{_TREC_EVAL_NAMES[trec.group(1).lower()]}@{trec.group(2)}"
    match = _TOKEN.match(text)
    if not match:
        raise ConfigError(f"cannot parse metric {token!r}{where}; expected e.g. {_EXAMPLES}")
    name = _ALIASES.get(match.group("name").lower(), match.group("name"))
    cutoff = match.group("cutoff")
    if cutoff is not None and not (cutoff.isdigit() and int(cutoff) > 0):
        raise ConfigError(f"metric {token!r}{where}: cutoff must be a positive integer")
    text = name + (match.group("params") or "") + (f"@{int(cutoff)}" if cutoff else "")
    try:
        return ir_measures.parse_measure(text)
    except (NameError, ValueError, TypeError, SyntaxError) as exc:
        raise ConfigError(
            f"unknown metric {token!r}{where}; expected e.g. {_EXAMPLES} ({exc})"
        ) from None


def parse_metrics(spec: str | Sequence[str]) -> list[Any]:
    """ir_measures measures from "MRR@10 R@50 nDCG@10 AP" (or a list of names). A bad name
    raises ConfigError naming it."""
    text = spec if isinstance(spec, str) else " ".join(map(str, spec))
    return [parse_metric(name, spec=text) for name in split_metrics(spec)]


def ranking_depth(spec: str | Sequence[str], floor: int = 100) -> int:
    """How many results per query the metrics of `spec` need: their deepest cutoff (R@1000:
    1000), at least `floor` (for the metrics without one, such as AP)."""
    cutoffs = [m.params.get("cutoff") for m in parse_metrics(spec)]
    return max([floor, *(c for c in cutoffs if isinstance(c, int))])


@dataclass
class EvalResult:
    """Metric means over the queries in scope, per-query values, and what was left out."""

    metrics: list[str]
    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_queries: int
    n_skipped_unjudged: int
    n_missing_run: int
    include_missing: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not per_query:
            data.pop("per_query")
        return data

    def to_json(self, *, per_query: bool = True, indent: int | None = 2) -> str:
        """JSON text; NaN (no query in scope) is written as null."""
        return json.dumps(_nan_to_none(self.to_dict(per_query=per_query)), indent=indent)

    def row(self, **extra: Any) -> dict[str, Any]:
        """{**extra, metric: mean, ..., "queries": n_queries} for `format_table`."""
        return {**extra, **self.aggregate, "queries": self.n_queries}


def evaluate_run(
    run: Run,
    qrels: Qrels,
    metrics: str | Sequence[str],
    *,
    skip_unjudged_queries: bool = True,
    include_missing: bool = False,
) -> EvalResult:
    """Evaluate a run ({qid: {docid: score}} or (qid, docid, score) rows) against qrels
    ({qid: {docid: grade}} or rows). Aggregates are keyed by the metric names as given."""
    names = split_metrics(metrics)
    spec = metrics if isinstance(metrics, str) else " ".join(names)
    measures = {name: parse_metric(name, spec=spec) for name in names}
    run_map = _as_nested(run, "run", _score)
    qrels_map = {q: docs for q, docs in _as_nested(qrels, "qrels", _grade).items() if docs}

    unjudged = [q for q in run_map if q not in qrels_map]
    if unjudged and not skip_unjudged_queries:
        raise InputError(
            f"{len(unjudged)} run queries have no relevance judgement (first: {unjudged[0]!r}); "
            "pass skip_unjudged_queries=True to skip them",
            field="qid",
        )
    evaluated = {q: _ranks(docs) for q, docs in run_map.items() if q in qrels_map}
    missing = [q for q in qrels_map if q not in run_map]
    scope = list(evaluated) + (missing if include_missing else [])

    per_query = {q: dict.fromkeys(names, 0.0) for q in scope}
    names_of: dict[Any, list[str]] = {}
    for name, measure in measures.items():
        names_of.setdefault(measure, []).append(name)
    if evaluated:
        judged = {q: qrels_map[q] for q in evaluated}
        for metric in ir_measures.iter_calc(list(names_of), judged, evaluated):
            for name in names_of[metric.measure]:
                per_query[metric.query_id][name] = float(metric.value)

    aggregate = {}
    for name, measure in measures.items():
        agg = measure.aggregator()
        for q in scope:
            agg.add(per_query[q][name])
        aggregate[name] = float(agg.result())
    notes = []
    if unjudged:
        notes.append(f"skipped {len(unjudged)} run queries without judgements")
    if missing:
        verb = "counted as 0" if include_missing else "left out of the means"
        notes.append(f"{len(missing)} judged queries absent from the run ({verb})")
    return EvalResult(
        metrics=names,
        aggregate=aggregate,
        per_query=per_query,
        n_queries=len(scope),
        n_skipped_unjudged=len(unjudged),
        n_missing_run=len(missing),
        include_missing=include_missing,
        notes=notes,
    )


def format_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, *, digits: int = 4
) -> str:
    """A Markdown table; columns default to every key in order of first appearance.
    Floats get `digits` decimals, missing cells stay empty."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(str(c) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- internals
def _as_nested(data, what: str, convert) -> dict[str, dict[str, Any]]:
    """{qid: {docid: value}} with string ids, from a nested mapping or (qid, docid, value)
    rows; duplicates and bad values are InputErrors naming the query and document."""
    out: dict[str, dict[str, Any]] = {}
    if isinstance(data, Mapping):
        items, seen_rows = ((q, d, v) for q, docs in data.items() for d, v in docs.items()), False
    else:
        items, seen_rows = data, True
    for i, item in enumerate(items):
        try:  # ir_measures' ScoredDoc / Qrel namedtuples start with (qid, docid, value)
            qid, docid, value = item[:3] if seen_rows and hasattr(item, "_fields") else item
        except (TypeError, ValueError):
            raise InputError(f"row {i} is not (qid, docid, value): {item!r}", field=what) from None
        qid, docid = str(qid), str(docid)
        docs = out.setdefault(qid, {})
        if docid in docs:
            raise InputError(f"duplicate document {docid!r} for query {qid!r}", field=what)
        try:
            docs[docid] = convert(value)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"bad value {value!r} for query {qid!r}, document {docid!r}: {exc}", field=what
            ) from None
    return out


def _score(value: Any) -> float:
    score = float(value)
    if math.isnan(score):
        raise ValueError("score is NaN")
    return score


def _grade(value: Any) -> int:
    grade = float(value)
    if not grade.is_integer():
        raise ValueError("relevance grades must be integers")
    return int(grade)


def _ranks(docs: Mapping[str, float]) -> dict[str, float]:
    """Scores replaced by n - rank after the trec_eval ordering (score desc, docid desc)."""
    ordered = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)
    n = len(ordered)
    return {docid: float(n - rank) for rank, (docid, _) in enumerate(ordered)}


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
