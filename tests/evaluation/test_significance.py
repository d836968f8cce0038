"""Paired comparisons: randomization p-values against exact enumeration, bootstrap
intervals, and run comparisons on shared queries."""

from __future__ import annotations

import itertools
import random

import pytest

from latesearch.errors import ConfigError, InputError
from latesearch.evaluation.significance import compare_runs, paired_comparison


def exact_sign_flip_p(diffs: list[float]) -> float:
    """Two-sided p of the sign-flip test by enumerating every sign pattern."""
    observed = abs(sum(diffs) / len(diffs))
    patterns = list(itertools.product((-1, 1), repeat=len(diffs)))
    hits = sum(
        abs(sum(s * d for s, d in zip(signs, diffs, strict=True)) / len(diffs)) >= observed - 1e-12
        for signs in patterns
    )
    return hits / len(patterns)


@pytest.mark.parametrize(
    "diffs", [[0.3, 0.1, -0.05, 0.2, 0.0, 0.15, -0.1, 0.25], [0.1, -0.2, 0.05, -0.1, 0.02, 0.3]]
)
def test_randomization_p_matches_exact_enumeration(diffs):
    a = {f"q{i}": 0.5 for i in range(len(diffs))}
    b = {f"q{i}": 0.5 + d for i, d in enumerate(diffs)}
    result = paired_comparison(a, b, resamples=40_000, seed=1)
    assert result.p_value == pytest.approx(exact_sign_flip_p(diffs), abs=0.01)
    assert result.diff == pytest.approx(sum(diffs) / len(diffs))
    assert result.wins == sum(d > 0 for d in diffs)
    assert result.losses == sum(d < 0 for d in diffs)


def test_identical_systems_differ_by_nothing():
    a = {f"q{i}": i / 10 for i in range(10)}
    result = paired_comparison(a, dict(a))
    assert (result.diff, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0
    assert (result.wins, result.losses) == (0, 0)


def test_a_clear_gain_is_significant_and_its_interval_excludes_zero():
    rng = random.Random(0)
    a = {f"q{i}": rng.random() for i in range(200)}
    b = {q: v + 0.05 + rng.gauss(0, 0.05) for q, v in a.items()}
    result = paired_comparison(a, b, metric="nDCG@10", seed=3)
    assert result.p_value < 0.001
    assert 0 < result.ci_low < result.diff < result.ci_high
    assert result.ci_low == pytest.approx(0.05, abs=0.02)
    assert result.metric == "nDCG@10"


def test_noise_alone_is_not_significant():
    rng = random.Random(1)
    a = {f"q{i}": rng.random() for i in range(100)}
    b = {q: v + rng.choice([-0.02, 0.02]) for q, v in a.items()}
    result = paired_comparison(a, b)
    assert result.ci_low < 0 < result.ci_high
    assert result.p_value > 0.05


def test_seeded_and_reproducible():
    rng = random.Random(2)
    a = {f"q{i}": rng.random() for i in range(30)}
    b = {q: rng.random() for q in a}
    assert paired_comparison(a, b, seed=7) == paired_comparison(a, b, seed=7)
    assert paired_comparison(a, b, seed=7).ci_low != paired_comparison(a, b, seed=8).ci_low


def test_bad_arguments_are_named():
    a, b = {"q1": 1.0, "q2": 0.0}, {"q1": 1.0}
    with pytest.raises(InputError, match="missing from the second system.*'q2'"):
        paired_comparison(a, b)
    with pytest.raises(InputError, match="no query"):
        paired_comparison({}, {})
    with pytest.raises(ConfigError, match="resamples"):
        paired_comparison(a, a, resamples=0)
    with pytest.raises(ConfigError, match="confidence"):
        paired_comparison(a, a, confidence=1.0)


QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}, "q4": {"d9": 0}}
GOOD = {"q1": {"d1": 2.0, "d5": 1.0}, "q2": {"d2": 2.0, "d5": 1.0}, "q3": {"d3": 2.0}}
POOR = {"q1": {"d5": 2.0, "d1": 1.0}, "q2": {"d5": 2.0}}  # q3 unanswered


def test_compare_runs_scores_every_system_on_the_same_queries():
    result = compare_runs({"poor": POOR, "good": GOOD}, QRELS, "RR@10 R@1", resamples=2000)
    assert result.baseline == "poor"
    assert result.n_queries == 3  # q4 is asked by no run
    assert result.means["good"] == {"RR@10": 1.0, "R@1": 1.0}
    assert result.means["poor"]["RR@10"] == pytest.approx(0.5 / 3)  # q3 scores 0
    comparison = result.comparisons["good"]["RR@10"]
    assert comparison.diff == pytest.approx(1 - 0.5 / 3)
    assert (comparison.wins, comparison.losses, comparison.n_queries) == (3, 0, 3)
    assert any("poor: 1 compared queries absent" in note for note in result.notes)
    assert set(result.to_dict()["comparisons"]["good"]) == {"RR@10", "R@1"}


def test_compare_runs_baseline_and_errors():
    result = compare_runs({"poor": POOR, "good": GOOD}, QRELS, "RR@10", baseline="good")
    assert result.comparisons["poor"]["RR@10"].diff < 0
    with pytest.raises(ConfigError, match="baseline 'x'"):
        compare_runs({"poor": POOR, "good": GOOD}, QRELS, "RR@10", baseline="x")
    with pytest.raises(ConfigError, match="at least two"):
        compare_runs({"good": GOOD}, QRELS, "RR@10")
    with pytest.raises(InputError, match="no run query"):
        compare_runs({"a": {"z": {"d1": 1.0}}, "b": {"z": {"d1": 1.0}}}, QRELS, "RR@10")
