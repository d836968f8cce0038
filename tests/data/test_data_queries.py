"""read_queries: MS MARCO TSV, BEIR JSONL, TREC topics, iterables, bad input."""

from __future__ import annotations

import pytest

from latesearch.data import ReadStats, read_queries
from latesearch.errors import ConfigError, InputError


def test_tsv_keeps_file_order_and_tolerates_a_header(write):
    path = write("q.tsv", "qid\ttext\n20\t what is late interaction \n3\tsecond\n")
    queries = read_queries(path)
    assert queries == {"20": "what is late interaction", "3": "second"}
    assert list(queries) == ["20", "3"]


def test_beir_jsonl(write):
    path = write("queries.jsonl.gz", '{"_id": "0", "text": "a claim", "metadata": {}}\n'
                                     '{"id": 1, "query": "other"}\n')
    assert read_queries(path) == {"0": "a claim", "1": "other"}


def test_trec_topics_in_their_usual_forms(write):
    classic = (
        "<top>\n<num> Number: 51\n<title> Topic: Airbus Subsidies\n\n<desc> Description:\n"
        "Document will discuss government assistance.\n\n<narr> Narrative:\nA relevant doc.\n"
        "</top>\n\n<top>\n<num> Number: 52\n<title> South African Sanctions\n</top>\n"
    )
    path = write("topics.txt", classic)
    assert read_queries(path) == {"51": "Airbus Subsidies", "52": "South African Sanctions"}
    assert read_queries(path, topic_field="desc", on_error="skip") == {
        "51": "Document will discuss government assistance."}
    closed = ("<top>\n<num>1</num><title>\nMEASUREMENT OF DIELECTRIC CONSTANT\n</title>\n</top>\n"
              "<top><num>2</num><title> design details </title></top>\n")
    assert read_queries(write("q.trec", closed)) == {
        "1": "MEASUREMENT OF DIELECTRIC CONSTANT", "2": "design details"}


def test_iterables():
    assert read_queries({"a": "x", 1: "y"}) == {"a": "x", "1": "y"}
    assert read_queries([("a", "x"), {"_id": "b", "text": "y"}]) == {"a": "x", "b": "y"}
    with pytest.raises(InputError, match=r"<iterable>:1: .*got str"):
        read_queries(["a\tb"])


BAD_CASES = [
    ("dup.tsv", "1\ta\n2\tb\n1\tc\n", 3, "qid", "duplicate query id '1'"),
    ("empty.tsv", "1\ta\n2\t  \n", 2, "text", "query '2' has no text"),
    ("cols.tsv", "1\ta\n2\n", 2, "text", "expected qid<TAB>text"),
    ("blank.tsv", "1\ta\n\n2\tb\n", 2, None, "blank line"),
    ("json.jsonl", '{"_id": "1", "text": "a"}\n{"_id": \n', 2, None, "malformed JSON"),
    ("notext.jsonl", '{"_id": "1"}\n', 1, "text", "no text"),
    ("badid.jsonl", '{"_id": [1], "text": "a"}\n', 1, "_id", "string or an integer"),
    ("nonum.trec", "<top><num>1</num><title>a</title></top>\n<top>\n<title>b</title></top>\n",
     2, "num", "no <num>"),
    ("notitle.trec", "<top>\n<num>1</num>\n</top>\n", 1, "title", "no <title>"),
    ("open.trec", "<top><num>1</num><title>a</title></top>\n<top>\n<num>2</num>\n", 2, "top",
     "not closed"),
    ("emptytitle.trec", "<top><num>1</num><title> </title></top>\n", 1, "text", "no text"),
]


@pytest.mark.parametrize(("name", "content", "line", "field", "message"), BAD_CASES)
def test_bad_input_names_path_line_and_field(write, name, content, line, field, message):
    path = write(name, content)
    with pytest.raises(InputError, match=message) as info:
        read_queries(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, field)


def test_bad_utf8_and_skip_mode(write):
    path = write("q.tsv", b"1\ta\n2\t\xff\n1\tagain\n3\t\n4\tb\n")
    with pytest.raises(InputError, match=r"q.tsv:2: invalid UTF-8"):
        read_queries(path)
    stats = ReadStats()
    assert read_queries(path, on_error="skip", stats=stats) == {"1": "a", "4": "b"}
    assert stats.skipped == {"bad_utf8": 1, "duplicate_id": 1, "empty_text": 1}
    assert stats.read == 2


def test_call_time_errors(write, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_queries(tmp_path / "nope.tsv")
    with pytest.raises(ConfigError, match="topic_field"):
        read_queries(write("q.trec", ""), topic_field="body")
