"""Dev-set ranking: from a model, or from embeddings already computed."""

from __future__ import annotations

import json
import math

import pytest
import torch

from latesearch.errors import InputError
from latesearch.training.devset import DevSet, DevSuite, query_group


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


def _beir(folder, docs: dict[str, str], queries: dict[str, str], qrels: dict[str, str]):
    folder.mkdir(parents=True)
    (folder / "qrels").mkdir()
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items()
    ))  # fmt: skip
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()
    ))  # fmt: skip
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels.items())
    )
    return folder


def two_beir_sets(root):
    """Two BEIR folders with the same ids but different corpora (so mixing them is wrong)."""
    a = _beir(root / "NanoA", {"d1": "the cat dog house", "d2": "the protein gene cell"},
              {"q1": "what cat", "q2": "what protein"}, {"q1": "d1", "q2": "d2"})  # fmt: skip
    b = _beir(root / "NanoB", {"d1": "the music city river", "d2": "the drug patient disease",
                               "d3": "the physics particle energy"},
              {"q1": "what drug"}, {"q1": "d2"})  # fmt: skip
    return [str(a), str(b)]


def test_suite_of_beir_folders_reports_each_set_and_their_mean(tmp_path, tiny_colbert):
    from latesearch import TrainConfig

    folders = two_beir_sets(tmp_path)
    config = TrainConfig(triples="t.tsv", dev_beir=folders + [folders[0]], eval_every=1)
    suite = DevSuite.load(config)
    assert [name for name, _ in suite.sets] == ["NanoA", "NanoB", "NanoA-2"]
    assert set(suite.sets[1][1].documents) == {"d1", "d2", "d3"}  # its own corpus only
    found = suite.evaluate(tiny_colbert)
    for metric in ("nDCG@10", "RR@10"):
        each = [suite.sets[i][1].evaluate(tiny_colbert)[metric] for i in range(3)]
        assert [found[f"{metric}/{n}"] for n in ("NanoA", "NanoB", "NanoA-2")] == each
        assert found[metric] == pytest.approx(sum(each) / 3)
    with pytest.raises(InputError, match="no qrels for split 'dev'"):
        DevSuite.load(config.replace(dev_split="dev"))
