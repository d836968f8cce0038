"""Metrics through ir-measures on tiny hand-computed cases."""

from __future__ import annotations

import json
import math

import ir_measures
import pytest

from latesearch.errors import ConfigError, InputError
from latesearch.evaluation import (
    EvalResult,
    evaluate_run,
    format_table,
    parse_metrics,
    ranking_depth,
)

QRELS = {
    "q1": {"d1": 1, "d2": 2, "d3": 0},
    "q2": {"d4": 1},
    "q3": {"d5": 1},  # judged, absent from the run
}
RUN = {
    "q1": {"dA": 3.0, "d2": 2.0, "d1": 1.0, "d3": 0.5},  # relevant at ranks 2 (grade 2) and 3
    "q2": {"d9": 5.0, "d8": 4.0, "d7": 3.0, "d4": 2.0},  # relevant at rank 4
    "q4": {"x": 1.0},  # no judgement
}
NDCG_Q1 = (2 / math.log2(3) + 1 / math.log2(4)) / (2 + 1 / math.log2(3))
NDCG_Q2 = 1 / math.log2(5)


def test_ranking_depth_is_the_deepest_cutoff_at_least_100():
    assert ranking_depth("MRR@10 nDCG@10 AP") == 100
    assert ranking_depth("MRR@10 R@50 R@1000 nDCG@10") == 1000
    assert ranking_depth(["P@5"], floor=10) == 10 and ranking_depth("R@30", floor=10) == 30


def test_parse_metrics_aliases():
    M = ir_measures
    assert parse_metrics("MRR@10 R@50 R@200 R@1000 nDCG@10 AP") == [
        M.RR @ 10,
        M.R @ 50,
        M.R @ 200,
        M.R @ 1000,
        M.nDCG @ 10,
        M.AP,
    ]
    assert parse_metrics("mrr@10, Recall@100,MAP ndcg@5 P@5 precision@3") == [
        M.RR @ 10,
        M.R @ 100,
        M.AP,
        M.nDCG @ 5,
        M.P @ 5,
        M.P @ 3,
    ]
    assert parse_metrics(["recip_rank", "ndcg_cut_10", "P_10", "recall_1000", "map"]) == [
        M.RR,
        M.nDCG @ 10,
        M.P @ 10,
        M.R @ 1000,
        M.AP,
    ]
    assert parse_metrics("RR(rel=2)@10 MAP@100") == [M.RR(rel=2) @ 10, M.AP @ 100]


@pytest.mark.parametrize("bad", ["Foo@5", "nDCG@x", "R@0", "MRR@", "@10", "nDCG(("])
def test_parse_errors_name_the_token(bad):
    with pytest.raises(ConfigError, match=bad.replace("(", r"\(")):
        parse_metrics(f"MRR@10 {bad}")
    with pytest.raises(ConfigError, match="no metric"):
        parse_metrics(" , ")


def test_hand_computed_values():
    result = evaluate_run(RUN, QRELS, "MRR@10 MRR@3 nDCG@10 R@2 R@3 P@2 AP RR(rel=2)@10")
    assert isinstance(result, EvalResult)
    assert result.n_queries == 2 and result.n_skipped_unjudged == 1 and result.n_missing_run == 1
    q1, q2 = result.per_query["q1"], result.per_query["q2"]
    assert set(result.per_query) == {"q1", "q2"}
    assert q1["MRR@10"] == pytest.approx(0.5) and q2["MRR@10"] == pytest.approx(0.25)
    assert q2["MRR@3"] == 0.0
    assert q1["nDCG@10"] == pytest.approx(NDCG_Q1) and q2["nDCG@10"] == pytest.approx(NDCG_Q2)
    assert q1["R@2"] == pytest.approx(0.5) and q1["R@3"] == pytest.approx(1.0)
    assert q1["P@2"] == pytest.approx(0.5)
    assert q1["AP"] == pytest.approx((1 / 2 + 2 / 3) / 2) and q2["AP"] == pytest.approx(0.25)
    assert q1["RR(rel=2)@10"] == pytest.approx(0.5)  # grade-2 document at rank 2
    agg = result.aggregate
    assert list(agg) == ["MRR@10", "MRR@3", "nDCG@10", "R@2", "R@3", "P@2", "AP", "RR(rel=2)@10"]
    assert agg["MRR@10"] == pytest.approx(0.375)
    assert agg["nDCG@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 2)
    assert agg["R@3"] == pytest.approx(0.5)


def test_include_missing_counts_zero():
    result = evaluate_run(RUN, QRELS, ["MRR@10", "R@3"], include_missing=True)
    assert result.n_queries == 3 and result.n_missing_run == 1
    assert result.per_query["q3"] == {"MRR@10": 0.0, "R@3": 0.0}
    assert result.aggregate["MRR@10"] == pytest.approx((0.5 + 0.25) / 3)


def test_unjudged_queries_error_when_not_skipped():
    with pytest.raises(InputError, match="q4"):
        evaluate_run(RUN, QRELS, "MRR@10", skip_unjudged_queries=False)
    judged_only = {q: docs for q, docs in RUN.items() if q != "q4"}
    result = evaluate_run(judged_only, QRELS, "MRR@10", skip_unjudged_queries=False)
    assert result.n_skipped_unjudged == 0


def test_rows_and_ids_as_given():
    rows = [(q, d, s) for q, docs in RUN.items() for d, s in docs.items()]
    qrels = [ir_measures.Qrel(q, d, r) for q, docs in QRELS.items() for d, r in docs.items()]
    by_rows = evaluate_run(rows, qrels, "MRR@10 AP")  # ir_measures' Qrel namedtuples too
    assert by_rows.aggregate == evaluate_run(RUN, QRELS, "MRR@10 AP").aggregate
    ints = evaluate_run({1: {7: 1.0, 8: 2.0}}, {"1": {"7": 1}}, "MRR@10")  # ids become str
    assert ints.per_query == {"1": {"MRR@10": 0.5}}


def test_ties_broken_like_trec_eval_for_every_metric():
    run = {"q1": {"d1": 1.0, "d2": 1.0, "dA": 1.0}}  # docid descending: dA, d2, d1
    result = evaluate_run(run, {"q1": {"d1": 1}}, "MRR@10 P@1 R@2 nDCG@10")
    q1 = result.per_query["q1"]
    assert q1["MRR@10"] == pytest.approx(1 / 3) and q1["P@1"] == 0.0 and q1["R@2"] == 0.0
    assert q1["nDCG@10"] == pytest.approx(0.5)


def test_bad_input_is_named():
    with pytest.raises(InputError, match="duplicate document 'd1' for query 'q1'"):
        evaluate_run([("q1", "d1", 1.0), ("q1", "d1", 2.0)], QRELS, "AP")
    with pytest.raises(InputError, match="'q1'.*'d1'"):
        evaluate_run({"q1": {"d1": float("nan")}}, QRELS, "AP")
    with pytest.raises(InputError, match="row 0"):
        evaluate_run([("q1", "d1")], QRELS, "AP")
    with pytest.raises(InputError, match="grades must be integers"):
        evaluate_run(RUN, {"q1": {"d1": 0.5}}, "AP")


def test_minus_inf_scores_rank_last():
    run = {"q1": {"d1": float("-inf"), "d2": 0.1, "dA": 0.2}}
    assert evaluate_run(run, QRELS, "MRR@10").per_query["q1"]["MRR@10"] == pytest.approx(0.5)


def test_no_query_in_scope_gives_nan_and_json_null():
    result = evaluate_run({"qx": {"d": 1.0}}, QRELS, "MRR@10")
    assert result.n_queries == 0 and result.n_skipped_unjudged == 1
    assert math.isnan(result.aggregate["MRR@10"])
    assert json.loads(result.to_json())["aggregate"] == {"MRR@10": None}


def test_json_and_table():
    result = evaluate_run(RUN, QRELS, "MRR@10 R@3")
    data = json.loads(result.to_json())
    assert data["aggregate"]["MRR@10"] == pytest.approx(0.375)
    assert data["n_skipped_unjudged"] == 1 and "q1" in data["per_query"]
    assert "per_query" not in json.loads(result.to_json(per_query=False))
    table = format_table(
        [result.row(model="a"), {"model": "b|c", "MRR@10": 1}], ["model", "MRR@10"]
    )
    assert table == "| model | MRR@10 |\n|---|---|\n| a | 0.3750 |\n| b\\|c | 1 |"
    assert format_table([{"x": None, "y": 0.5}], digits=1) == "| x | y |\n|---|---|\n|  | 0.5 |"
