"""Evaluation sets from BEIR folders or files, subsets, and the query runner."""

from __future__ import annotations

import json

import pytest

from latesearch.errors import InputError
from latesearch.evaluation.datasets import load_eval_set, restrict_eval_set
from latesearch.evaluation.runner import latency_ms, run_queries


@pytest.fixture()
def beir(tmp_path):
    root = tmp_path / "col"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    rows = [{"_id": q, "text": f"query {q}"} for q in ("a", "b", "c", "t")]
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\na\td1\t2\nb\td2\t1\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nt\td1\t1\n")
    return root


def test_beir_split_and_override(beir):
    data = load_eval_set(beir, split="test")
    assert data.queries == {"a": "query a", "b": "query b"} and data.n_unjudged == 0
    assert data.qrels["a"] == {"d1": 2} and data.name == "col/test"
    other = load_eval_set(beir, beir / "qrels" / "train.tsv")
    assert list(other.queries) == ["t"] and other.n_unjudged == 3  # a, b, c unjudged there


def test_files_count_unjudged_and_missing(tmp_path):
    queries = tmp_path / "q.tsv"
    queries.write_text("1\tfirst\n2\tsecond\n3\tthird\n")
    qrels = tmp_path / "qrels"
    qrels.write_text("1 0 d1 1\n3 0 d2 0\n9 0 d3 1\n")
    data = load_eval_set(queries, qrels)
    assert list(data.queries) == ["1", "3"] and data.n_unjudged == 1
    assert any("no query text" in n for n in data.notes)  # query 9 is judged but absent
    with pytest.raises(InputError, match="--qrels"):
        load_eval_set(queries)


def test_restrict_novel_and_listed(beir, tmp_path):
    data = load_eval_set(beir)
    novel = restrict_eval_set(data, exclude_train_qrels=beir / "qrels" / "train.tsv")
    assert list(novel.queries) == ["b"] and novel.name == "col/test[novel]"
    ids = tmp_path / "ids"
    ids.write_text("a\n")
    assert list(restrict_eval_set(data, query_ids=ids).qrels) == ["a"]


def test_run_queries_and_latency():
    calls = []

    def search(texts):
        calls.append(len(texts))
        return [[(f"d-{t}", 1.0), ("x", 0.5)] for t in texts]

    result = run_queries(search, {"q1": "a", "q2": "b", "q3": "c"}, batch_size=2)
    assert calls == [2, 1]
    assert result.run["q3"] == {"d-c": 1.0, "x": 0.5} and result.n_queries == 3
    stats = latency_ms(search, ["a", "b", "c"], warmup=1)
    assert stats["n"] == 3 and calls[2:] == [1, 1, 1, 1]
    assert 0 <= stats["median"] <= stats["p95"]
