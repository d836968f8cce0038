"""Paired comparison of two systems on the same queries: the mean difference of a per-query
metric, a two-sided paired randomization (sign-flip) test and a bootstrap confidence
interval, as IR papers report them (Smucker, Allan & Carterette, CIKM 2007).

Both tests resample the per-query differences d_q = b_q - a_q:
- randomization: each d_q's sign is flipped at random (the null hypothesis: the systems
  are exchangeable on every query); p = (1 + #{|mean*| >= |mean|}) / (1 + resamples);
- bootstrap: queries drawn with replacement; the interval is the percentile interval of the
  resampled means at the given confidence.
Resampling is seeded, so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latesearch._configio import check_positive
from latesearch.errors import ConfigError, InputError

_CHUNK = 1000  # resamples drawn at a time (memory: CHUNK x queries)


@dataclass(frozen=True)
class PairedComparison:
    """System B against system A on one metric over `n_queries` shared queries."""

    metric: str
    n_queries: int
    mean_a: float
    mean_b: float
    diff: float  # mean_b - mean_a
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    wins: int  # queries where B > A
    losses: int  # queries where B < A
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_comparison(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    metric: str = "",
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-query values `b` against `a` ({qid: value}). Both must cover the same
    queries: a query in one only is an InputError naming it."""
    check_positive("resamples", resamples, error=ConfigError)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        side, missing = ("second", only_a) if only_a else ("first", only_b)
        raise InputError(
            f"{len(missing)} queries are missing from the {side} system "
            f"(first: {missing[0]!r}); compare runs over the same queries",
            field="qid",
        )
    if not a:
        raise InputError("no query to compare", field="qid")
    qids = sorted(a)
    va = np.array([float(a[q]) for q in qids])
    vb = np.array([float(b[q]) for q in qids])
    d = vb - va
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    extreme, boot = 0, []
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, len(d)))
        extreme += int((np.abs((signs * d).mean(axis=1)) >= abs(observed) - 1e-12).sum())
        boot.append(d[rng.integers(0, len(d), size=(size, len(d)))].mean(axis=1))
    means = np.concatenate(boot)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedComparison(
        metric=metric,
        n_queries=len(d),
        mean_a=float(va.mean()),
        mean_b=float(vb.mean()),
        diff=observed,
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        p_value=(1 + extreme) / (1 + resamples),
        wins=int((d > 0).sum()),
        losses=int((d < 0).sum()),
        resamples=resamples,
    )


@dataclass(frozen=True)
class RunComparison:
    """Every system's means and each one's paired comparison against the baseline."""

    baseline: str
    metrics: list[str]
    n_queries: int
    confidence: float
    resamples: int
    means: dict[str, dict[str, float]]  # system -> metric -> mean
    comparisons: dict[str, dict[str, PairedComparison]]  # system -> metric -> vs baseline
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparisons"] = {
            name: {m: c.to_dict() for m, c in per.items()} for name, per in self.comparisons.items()
        }
        return data


def compare_runs(
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: str | list[str],
    *,
    baseline: str | None = None,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RunComparison:
    """Evaluate runs ({name: {qid: {docid: score}}}) and compare each with the baseline (the
    first run unless named) query by query. The queries compared are the judged queries
    that some run answers; a run without one of them scores 0 there (trec_eval -c), so
    every system is measured on the same queries."""
    from latesearch.evaluation.metrics import evaluate_run, split_metrics

    if len(runs) < 2:
        raise ConfigError(f"compare needs at least two runs, got {len(runs)}")
    baseline = next(iter(runs)) if baseline is None else baseline
    if baseline not in runs:
        raise ConfigError(f"baseline {baseline!r} is not one of the runs: {', '.join(runs)}")
    names = split_metrics(metrics)
    asked = {q for run in runs.values() for q in run}
    scope = {q: docs for q, docs in qrels.items() if q in asked and docs}
    if not scope:
        raise InputError("no run query has a judgement in the qrels", field="qid")
    results, notes = {}, []
    for name, run in runs.items():
        answered = {q: docs for q, docs in run.items() if q in scope}
        results[name] = evaluate_run(answered, scope, names, include_missing=True)
        if results[name].n_missing_run:
            notes.append(f"{name}: {results[name].n_missing_run} compared queries absent "
                         "from its run, scored 0")  # fmt: skip
    base = results[baseline].per_query
    comparisons = {
        name: {
            m: paired_comparison(
                {q: v[m] for q, v in base.items()},
                {q: v[m] for q, v in result.per_query.items()},
                metric=m,
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
            for m in names
        }
        for name, result in results.items()
        if name != baseline
    }
    return RunComparison(
        baseline=baseline,
        metrics=names,
        n_queries=len(scope),
        confidence=confidence,
        resamples=resamples,
        means={name: dict(r.aggregate) for name, r in results.items()},
        comparisons=comparisons,
        notes=notes,
    )
