"""read_text_triples / read_id_triples: forms, lookups, bad input, streaming."""

from __future__ import annotations

import pytest

from latesearch.data import Document, ReadStats, Triple, read_id_triples, read_text_triples
from latesearch.errors import InputError

QUERIES = {"1": "query one", "2": "query two"}
COLLECTION = {"10": "pos text", "11": "neg text", "12": Document("12", "body", "Title")}


def test_text_triples_with_extra_negatives(write):
    path = write("t.tsv.gz", "q\tp\tn\nq2\tp2\tn1\tn2\n")
    assert list(read_text_triples(path)) == [
        Triple("q", "p", ["n"]),
        Triple("q2", "p2", ["n1", "n2"]),
    ]


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        ("q\tp\n", "negative", "got 2 columns"),
        ("q\n", "positive", "got 1 columns"),
        ("q\tp\t \n", "negatives[0]", "blank text"),
        (" \tp\tn\n", "query", "blank text"),
    ],
)
def test_text_triples_errors(write, content, field, message):
    path = write("t.tsv", "q\tp\tn\n" + content)
    with pytest.raises(InputError, match=message) as info:
        list(read_text_triples(path))
    assert (info.value.line, info.value.field) == (2, field)


def test_text_triples_are_streamed_and_skippable(write):
    path = write("t.tsv", "q\tp\tn\nbroken\n\nq\tp\tn2\n")
    assert next(read_text_triples(path)) == Triple("q", "p", ["n"])
    stats = ReadStats()
    assert len(list(read_text_triples(path, on_error="skip", stats=stats))) == 2
    assert stats.skipped == {"bad_columns": 1, "blank_line": 1} and stats.read == 2


def test_id_triples_plain_and_distillation_forms(write):
    path = write("ids.jsonl", '["1", "10", "11"]\n[2, [10, 9.5], [11, 1], [12, -2.0]]\n')
    first, second = read_id_triples(path, QUERIES, COLLECTION)
    assert first == Triple("query one", "pos text", ["neg text"], None, "1", ["10", "11"])
    assert second == Triple(
        "query two",
        "pos text",
        ["neg text", "Title body"],
        [9.5, 1.0, -2.0],
        "2",
        ["10", "11", "12"],
    )


def test_id_triples_tsv(write):
    triple = next(read_id_triples(write("ids.tsv", "1\t10\t11\n"), QUERIES, COLLECTION))
    assert (triple.query, triple.positive, triple.negatives) == (
        "query one",
        "pos text",
        ["neg text"],
    )


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('["9", "10", "11"]', "qid", "query id '9' is not in the queries"),
        ('["1", "10", "99"]', "negatives[0]", "document id '99' is not in the collection"),
        ('["1", "77", "11"]', "positive", "document id '77'"),
        ('["1", "10"]', None, "got 2 ids"),
        ('["1", ["10", 1.0], "11"]', None, "every passage a pair"),
        ('["1", ["10", "x"], ["11", 1]]', "scores[0]", "score must be a number"),
        ('{"qid": "1"}', None, "expected a JSON list"),
        ('["1", "10", ', None, "malformed JSON"),
        ('["1", null, "11"]', "positive", "string or an integer"),
    ],
)
def test_id_triples_errors_name_the_line(write, line, field, message):
    path = write("ids.jsonl", '["1", "10", "11"]\n' + line + "\n")
    triples = read_id_triples(path, QUERIES, COLLECTION)
    assert next(triples).query_id == "1"
    with pytest.raises(InputError, match=rf"ids.jsonl:2\b.*{message}") as info:
        next(triples)
    assert (info.value.line, info.value.field) == (2, field)


def test_id_triples_skip_mode(write):
    path = write("ids.jsonl", '["9", "10", "11"]\n["1", "10", "99"]\n["1", "10", "11"]\n')
    stats = ReadStats()
    triples = list(read_id_triples(path, QUERIES, COLLECTION, on_error="skip", stats=stats))
    assert len(triples) == 1 and stats.skipped == {"unknown_id": 2}


def test_missing_file_fails_at_call_time(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_text_triples(tmp_path / "missing.tsv")


def test_text_triples_as_json_records_with_scores(write):
    path = write("t.jsonl", '{"query": "q", "positive": "p", "negatives": ["n1", "n2"], '
                            '"scores": [3, 1.5, -1]}\n{"query": "q2", "positive": "p2", '
                            '"negatives": "n"}\n')  # fmt: skip
    assert list(read_text_triples(path)) == [
        Triple("q", "p", ["n1", "n2"], [3.0, 1.5, -1.0]),
        Triple("q2", "p2", ["n"]),
    ]


@pytest.mark.parametrize(("record", "field", "message"), [
    ('{"positive": "p", "negatives": ["n"]}', "query", "non-blank text"),
    ('{"query": "q", "positive": "p", "negatives": []}', "negatives", "non-empty list"),
    ('{"query": "q", "positive": "p", "negatives": ["n", 3]}', "negatives[1]", "non-blank"),
    ('{"query": "q", "positive": "p", "negatives": ["n"], "scores": [1]}', "scores",
     "list of 2 scores"),
    ('{"query": "q", "positive": "p", "negatives": ["n"], "scores": [1, "x"]}', "scores[1]",
     "must be a number"),
    ('["q", "p", "n"]', None, "expected a JSON object"),
])  # fmt: skip
def test_text_json_records_errors(write, record, field, message):
    path = write("t.jsonl", '{"query": "q", "positive": "p", "negatives": ["n"]}\n' + record)
    with pytest.raises(InputError, match=message) as info:
        list(read_text_triples(path))
    assert (info.value.line, info.value.field) == (2, field)


def test_id_triples_pylate_distillation_records(write):
    path = write("kd.jsonl", '{"query_id": 1, "document_ids": [10, "12"], "scores": [2, 1]}\n')
    (triple,) = read_id_triples(path, QUERIES, COLLECTION)
    assert triple == Triple("query one", "pos text", ["Title body"], [2.0, 1.0], "1",
                            ["10", "12"])  # fmt: skip
    bad = write("bad.jsonl", '{"query_id": 1, "document_ids": [10, 12], "scores": [2]}\n')
    with pytest.raises(InputError, match="list of 2 scores") as info:
        list(read_id_triples(bad, QUERIES, COLLECTION))
    assert info.value.field == "scores"
