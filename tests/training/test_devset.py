"""Dev-set ranking: from a model, or from embeddings already computed."""

from __future__ import annotations

import math

import pytest
import torch

from latesearch.training.devset import DevSet, query_group


def _dev() -> DevSet:
    return DevSet(
        queries={"q1": "cat on a mat", "q2": "protein folding"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1}},
        documents={"d1": "a cat sat on the mat", "d2": "proteins fold", "d3": "stock prices"},
    )


def test_rank_orders_documents_by_maxsim():
    dev = _dev()
    e = torch.eye(4)
    Q = torch.stack([e[:2], e[2:]])  # q1 = tokens {0, 1}, q2 = tokens {2, 3}
    docs = [e[[0, 1]], e[[2, 3]], e[[3, 0]]]
    run = dev.rank(Q, docs, k=2)
    assert run["q1"] == pytest.approx({"d1": 2.0, "d3": 1.0})
    assert list(run["q1"]) == ["d1", "d3"]
    assert list(run["q2"]) == ["d2", "d3"]
    with pytest.raises(ValueError, match="expected 2 queries and 3 documents"):
        dev.rank(Q, docs[:2])


def test_top_k_ranks_any_score_matrix():
    dev = _dev()
    scores = torch.tensor([[0.1, 0.9, 0.5], [3.0, -1.0, 2.0]])
    run = dev.top_k(scores, k=2)
    assert list(run["q1"]) == ["d2", "d3"]
    assert run["q2"] == pytest.approx({"d1": 3.0, "d3": 2.0})
    with pytest.raises(ValueError, match="expected a 2 x 3 score matrix"):
        dev.top_k(scores[:, :2])


def test_run_is_rank_over_the_models_embeddings(tiny_colbert):
    dev = _dev()
    run = dev.run(tiny_colbert)
    Q = tiny_colbert.encode_queries(list(dev.queries.values()))
    docs = tiny_colbert.encode_documents(list(dev.documents.values()))
    assert run == dev.rank(Q, docs)
    assert set(dev.evaluate(tiny_colbert)) == {"nDCG@10", "RR@10"}


def test_measure_groups_averages_each_prefix_once():
    qrels = {"a:1": {"d1": 1}, "a:2": {"d2": 1}, "a:3": {"d3": 1}, "b:1": {"d4": 1}}
    run = {  # group a: all three found first; group b: its document at rank 2
        "a:1": {"d1": 2.0},
        "a:2": {"d2": 2.0},
        "a:3": {"d3": 2.0},
        "b:1": {"d9": 3.0, "d4": 1.0},
    }
    pooled = DevSet.measure(run, qrels)
    grouped = DevSet.measure(run, qrels, average="groups")
    assert pooled["RR@10"] == pytest.approx((3 + 0.5) / 4)
    assert grouped["RR@10"] == pytest.approx((1 + 0.5) / 2)
    assert grouped["RR@10/a"] == pytest.approx(1.0) and grouped["RR@10/b"] == pytest.approx(0.5)
    assert grouped["nDCG@10/b"] == pytest.approx(1 / math.log2(3))
    with pytest.raises(ValueError, match="average must be one of"):
        DevSet.measure(run, qrels, average="macro")


def test_query_group_is_the_id_prefix():
    assert query_group("sf:12:3") == "sf"
    assert query_group("12") == ""
