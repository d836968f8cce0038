"""Query subsets: novel test queries and query-id files."""

from __future__ import annotations

import pytest

from latesearch.errors import InputError
from latesearch.evaluation import novel_queries, read_query_ids, relevant_docs, restrict

TRAIN = {"t1": {"d1": 1, "d2": 0}, "t2": {"d3": 2}}
TEST = {
    "q1": {"d1": 1},  # shares d1 with t1: not novel
    "q2": {"d2": 1},  # d2 only judged non-relevant in train: novel
    "q3": {"d4": 1, "d3": 1},  # one relevant doc shared: not novel
    "q4": {"d5": 2, "d6": 0},  # novel
    "q5": {"d1": 0},  # no relevant document: never novel
}


def test_relevant_docs_honours_min_rel():
    assert relevant_docs(TRAIN) == {"d1", "d3"}
    assert relevant_docs(TRAIN, min_rel=2) == {"d3"}


def test_novel_queries():
    assert novel_queries(TEST, TRAIN) == {"q2", "q4"}
    assert novel_queries(TEST, {}) == {"q1", "q2", "q3", "q4"}
    # with grade-2 relevance only, d1 is no longer "seen" and q4's d5 still counts
    assert novel_queries(TEST, TRAIN, min_rel=2) == {"q4"}


def test_read_query_ids(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# novel queries\nq1\n\n  q2 extra columns\nq1\n", encoding="utf-8")
    assert read_query_ids(path) == {"q1", "q2"}


def test_read_query_ids_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no query id"):
        read_query_ids(empty)
    with pytest.raises(InputError, match="cannot read"):
        read_query_ids(tmp_path / "missing.txt")


def test_restrict_keeps_order():
    assert list(restrict({"b": 1, "a": 2, "c": 3}, ["c", "b", "x"])) == ["b", "c"]
