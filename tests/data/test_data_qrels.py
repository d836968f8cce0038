"""read_qrels (TREC, BEIR, MS MARCO) and load_beir."""

from __future__ import annotations

import pytest

from latesearch.data import ReadStats, load_beir, read_collection, read_qrels
from latesearch.errors import InputError


def test_trec_qrels_graded(write):
    path = write("qrels", "1 0 d1 2\n1 0 d2 0\n2 Q0 d1 -1\n")
    assert read_qrels(path) == {"1": {"d1": 2, "d2": 0}, "2": {"d1": -1}}


def test_beir_tsv_with_header_and_msmarco_forms(write):
    beir = write("test.tsv", "query-id\tcorpus-id\tscore\nq1\tc1\t1\nq1\tc2\t2.0\n")
    assert read_qrels(beir) == {"q1": {"c1": 1, "c2": 2}}
    assert read_qrels(write("pairs.tsv", "5\t10\n5\t11\n6\t10\n")) == {
        "5": {"10": 1, "11": 1}, "6": {"10": 1}}
    assert read_qrels(write("q.tsv.gz", "5\t0\t10\t1\n")) == {"5": {"10": 1}}
    assert read_qrels(write("empty.txt", "")) == {}


BAD_CASES = [
    ("dup", "1 0 a 1\n1 0 a 1\n", 2, "doc_id", "judged twice"),
    ("rel", "1 0 a 1\n1 0 b x\n", 2, "relevance", "relevance must be an integer"),
    ("frac", "1 0 a 0.5\n", 1, "relevance", "integer"),
    ("width", "1 0 a 1\n1 b\n", 2, None, "expected 4 columns"),
    ("cols", "1 0 a 1 x\n", 1, None, "expected 2 to 4 columns"),
    ("blank", "1 0 a 1\n   \n1 0 b 1\n", 2, None, "blank line"),
]


@pytest.mark.parametrize(("name", "content", "line", "field", "message"), BAD_CASES)
def test_bad_input_names_path_line_and_field(write, name, content, line, field, message):
    path = write(name, content)
    with pytest.raises(InputError, match=message) as info:
        read_qrels(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, field)


def test_skip_mode(write):
    path = write("q", b"1 0 a 1\n1 0 a 1\n\xff 0 b 1\n1 0 c z\n2 0 a 1\n")
    stats = ReadStats()
    assert read_qrels(path, on_error="skip", stats=stats) == {"1": {"a": 1}, "2": {"a": 1}}
    assert stats.skipped == {"duplicate_id": 1, "bad_utf8": 1, "bad_field": 1}


def _beir(write, qrels: str = "query-id\tcorpus-id\tscore\nq2\td1\t1\nq1\td2\t1\n") -> None:
    write("beir/corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n')
    write("beir/queries.jsonl", '{"_id": "q1", "text": "one"}\n{"_id": "q2", "text": "two"}\n'
                                '{"_id": "q3", "text": "three"}\n')
    write("beir/qrels/test.tsv", qrels)


def test_load_beir_restricts_queries_to_the_split(write, tmp_path):
    _beir(write)
    corpus, queries, qrels = load_beir(tmp_path / "beir", "test")
    assert corpus == tmp_path / "beir" / "corpus.jsonl"
    assert queries == {"q1": "one", "q2": "two"} and list(queries) == ["q1", "q2"]
    assert qrels == {"q1": {"d2": 1}, "q2": {"d1": 1}}
    assert [doc.doc_id for doc in read_collection(corpus)] == ["d1", "d2"]


def test_load_beir_errors(write, tmp_path):
    _beir(write, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n")
    with pytest.raises(InputError, match=r"test.tsv \(field 'query-id'\): judged query 'q9'"):
        load_beir(tmp_path / "beir")
    stats = ReadStats()
    _, queries, qrels = load_beir(tmp_path / "beir", on_error="skip", stats=stats)
    assert list(queries) == list(qrels) == ["q1"] and stats.skipped == {"unknown_id": 1}
    with pytest.raises(InputError, match=r"no qrels for split 'dev' \(found: \['test'\]\)"):
        load_beir(tmp_path / "beir", "dev")
    with pytest.raises(InputError, match="use load_beir"):
        read_qrels(tmp_path / "beir")
