"""read_collection / count_documents: formats, gz, iterables, bad input, skip mode, streaming."""

from __future__ import annotations

import json

import pytest

from latesearch.data import Document, ReadStats, count_documents, read_collection
from latesearch.errors import ConfigError, InputError


def ids(docs):
    return [doc.doc_id for doc in docs]


def test_tsv_two_and_three_columns(write):
    path = write("c.tsv", "1\tfirst text\n2\tsecond\tA title\n3\t\n")
    stats = ReadStats()
    docs = list(read_collection(path, stats=stats))
    assert docs == [Document("1", "first text"), Document("2", "second", "A title"),
                    Document("3", "")]
    assert (stats.read, stats.empty) == (3, 1)


def test_tsv_header_only_when_first_column_is_an_id_name(write):
    docs = list(read_collection(write("h.tsv", "pid\ttitle\ttext\n7\tT\tbody\n")))
    assert docs == [Document("7", "body", "T")]
    assert ids(read_collection(write("n.tsv", "doc\ttext\n8\tx\n"))) == ["doc", "8"]
    assert ids(read_collection(write("n2.tsv", "x\ty\nid\ttext\n"))) == ["x", "id"]


def test_beir_jsonl_and_id_key_variants(write):
    lines = [{"_id": "a", "title": "T", "text": "x"}, {"id": 5, "text": "y"},
             {"docid": "c", "text": "z", "title": None}, {"doc_id": "d", "contents": "w"}]
    path = write("c.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    docs = list(read_collection(path))
    assert docs == [Document("a", "x", "T"), Document("5", "y"), Document("c", "z"),
                    Document("d", "w")]
    assert docs[0].full_text() == "T x" and docs[0].full_text(" | ") == "T | x"
    assert docs[1].full_text(" | ") == "y"


def test_trec_multiline_records_titles_and_several_docs_on_one_line(write):
    text = (
        "<DOC>\n<DOCNO> d1 </DOCNO>\n<TITLE>The title</TITLE>\n<TEXT>\nsome  text\nover"
        " lines &amp; more\n</TEXT>\n</DOC>\n"
        "<DOC><DOCNO>d2</DOCNO>two</DOC><doc><docno>d3</docno>three</doc>\n"
        "\n<DOC>\n<DOCNO>d4</DOCNO>\n</DOC>\n"
    )
    stats = ReadStats()
    docs = list(read_collection(write("c.trec", text), stats=stats))
    assert docs == [Document("d1", "some text over lines & more", "The title"),
                    Document("d2", "two"), Document("d3", "three"), Document("d4", "")]
    assert stats.empty == 1


def test_trec_several_titles_use_title_join(write):
    path = write("t.sgml", "<DOC><DOCNO>1</DOCNO><TITLE>A</TITLE><TITLE>B</TITLE>x</DOC>")
    assert next(read_collection(path, title_join=" / ")).title == "A / B"


def test_gz_folder_and_sniffing(write, tmp_path):
    assert ids(read_collection(write("c.tsv.gz", "1\ta\n2\tb\n"))) == ["1", "2"]
    write("beir/corpus.jsonl.gz", '{"_id": "x", "text": "t"}\n')
    assert ids(read_collection(tmp_path / "beir")) == ["x"]
    assert ids(read_collection(write("docs.txt", "\n<DOC><DOCNO>9</DOCNO>t</DOC>\n"))) == ["9"]
    assert ids(read_collection(write("docs", '{"_id": "j", "text": "t"}\n'))) == ["j"]
    assert ids(read_collection(write("docs.dat", "5\tt\n"))) == ["5"]
    assert ids(read_collection(write("forced.txt", "1\tt\n"), format="tsv")) == ["1"]
    assert list(read_collection(write("empty.txt", ""))) == []


def test_iterables_of_tuples_dicts_and_documents():
    items = [("1", "a"), ("2", "b", "T"), {"_id": 3, "text": "c"}, Document("4", "d"),
             ["5", "e"]]
    assert list(read_collection(items)) == [
        Document("1", "a"), Document("2", "b", "T"), Document("3", "c"), Document("4", "d"),
        Document("5", "e")]
    assert list(read_collection({"k": "v"})) == [Document("k", "v")]


@pytest.mark.parametrize("items, where, field, words", [
    ([("1", "a"), ("2", None)], "documents[1]", "text", "got NoneType"),
    ([7], "documents[0]", None, "got int"),
    ([(1, "a"), ("1", "b")], "documents[1]", "doc_id", "duplicate document id '1'"),
    ([{"id": "a b", "text": "t"}], "documents[0]", "id", "holds ' '"),
    ([{"_id": "1", "text": "t"}, {"_id": "2", "text": "t \ud800"}], "documents[1]", "text",
     r"U\+D800"),
    ([Document("1", "t", "\udc80")], "documents[0]", "title", "lone surrogate"),
    ([Document("1", "t", metadata={"k": ["\ud800"]})], "documents[0]", "metadata", "surrogate"),
    ([Document("1", "t", metadata={"k": {1}})], "documents[0]", "metadata", "not JSON"),
    ([{"id": "1", "text": "t", "year": float("nan")}], "documents[0]", "metadata", "not JSON"),
])  # fmt: skip
def test_iterable_errors_name_the_item_and_its_field(items, where, field, words):
    with pytest.raises(InputError, match=words) as err:
        list(read_collection(items))
    assert (err.value.path, err.value.line, err.value.field) == (where, None, field)


def test_a_lone_surrogate_in_a_json_file_is_located(write):
    path = write("c.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "2", "text": "b \\ud800"}\n')
    with pytest.raises(InputError, match="lone surrogate") as err:
        list(read_collection(path))
    assert (err.value.line, err.value.field) == (2, "text")
    stats = ReadStats()
    assert ids(read_collection(path, on_error="skip", stats=stats)) == ["1"]
    assert stats.skipped == {"bad_field": 1}


def test_control_characters_stay_in_documents():
    # unlike queries, documents keep them: tokenizers and the doc store take them, and
    # real collections hold them (form feeds, bells)
    assert next(read_collection([("1", "a\x0cb\x07")])).text == "a\x0cb\x07"


BAD_CASES = [
    ("dup.tsv", "1\ta\n2\tb\n1\tc\n", 3, "doc_id", "duplicate document id '1'"),
    ("blank.tsv", "1\ta\n\n2\tb\n", 2, None, "blank line"),
    ("cols.tsv", "1\ta\n2\n", 2, "text", "missing the text column"),
    ("many.tsv", "1\ta\n2\tb\tc\td\n", 2, None, "2 or 3 tab-separated columns"),
    ("emptyid.tsv", "1\ta\n \tb\n", 2, "doc_id", "empty id"),
    ("json.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "2", "text": \n', 2, None,
     "malformed JSON"),
    ("list.jsonl", '{"_id": "1", "text": "a"}\n["2", "b"]\n', 2, None, "expected a JSON object"),
    ("noid.jsonl", '{"_id": "1", "text": "a"}\n{"text": "b"}\n', 2, "_id", "no document id"),
    ("notext.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "2"}\n', 2, "text", "no text"),
    ("floatid.jsonl", '{"_id": 1.5, "text": "a"}\n', 1, "_id", "string or an integer"),
    ("boolid.jsonl", '{"id": true, "text": "a"}\n', 1, "id", "got bool"),
    ("title.jsonl", '{"_id": "1", "text": "a", "title": 3}\n', 1, "title", "expected a string"),
    ("open.trec", "<DOC><DOCNO>1</DOCNO>a</DOC>\n<DOC>\n<DOCNO>2</DOCNO>\nb\n", 2, "DOC",
     "not closed at end of file"),
    ("nested.trec", "<DOC>\n<DOCNO>1</DOCNO>\n<DOC><DOCNO>2</DOCNO>b</DOC>\n", 1, "DOC",
     "not closed before the <DOC> on line 3"),
    ("nodocno.trec", "<DOC><DOCNO>1</DOCNO>a</DOC>\n\n<DOC>\nno id\n</DOC>\n", 3, "DOCNO",
     "no <DOCNO>"),
    ("twodocno.trec", "<DOC><DOCNO>1</DOCNO><DOCNO>2</DOCNO></DOC>\n", 1, "DOCNO",
     "2 <DOCNO> elements"),
    ("stray.trec", "<DOC><DOCNO>1</DOCNO>a</DOC>\ngarbage\n", 2, "DOC", "text outside"),
    ("duptrec.trec", "<DOC><DOCNO>1</DOCNO>a</DOC>\n<DOC><DOCNO>1</DOCNO>b</DOC>\n", 2,
     "doc_id", "duplicate"),
]


@pytest.mark.parametrize(("name", "content", "line", "field", "message"), BAD_CASES)
def test_bad_input_names_path_line_and_field(write, name, content, line, field, message):
    path = write(name, content)
    with pytest.raises(InputError, match=message) as info:
        list(read_collection(path))
    error = info.value
    assert (error.path, error.line, error.field) == (str(path), line, field)
    assert f"{name}:{line}" in str(error)


@pytest.mark.parametrize("name", ["u.tsv", "u.jsonl", "u.trec"])
def test_bad_utf8(write, name):
    good = {"u.tsv": b"1\ta\n", "u.jsonl": b'{"_id": "1", "text": "a"}\n',
            "u.trec": b"<DOC><DOCNO>1</DOCNO>a</DOC>\n"}[name]
    bad = {"u.tsv": b"2\t\xff\xfe\n", "u.jsonl": b'{"_id": "2", "text": "\xc3("}\n',
           "u.trec": b"<DOC><DOCNO>2</DOCNO>\n\xff\n</DOC>\n"}[name]
    path = write(name, good + bad + good.replace(b"1", b"3"))
    with pytest.raises(InputError, match=rf"{name}:\d+: invalid UTF-8"):
        list(read_collection(path))
    stats = ReadStats()
    assert ids(read_collection(path, on_error="skip", stats=stats)) == ["1", "3"]
    assert stats.skipped == {"bad_utf8": 1}


def test_skip_mode_counts_reasons_and_keeps_examples(write):
    content = "1\ta\n\n2\n1\tdup\n3\t\n4\tb\tc\td\n5\tok\n"
    stats = ReadStats(max_examples=2)
    docs = list(read_collection(write("s.tsv", content), on_error="skip", stats=stats))
    assert ids(docs) == ["1", "3", "5"]
    assert stats.skipped == {"blank_line": 1, "bad_columns": 2, "duplicate_id": 1}
    assert (stats.read, stats.empty, stats.total_skipped) == (3, 1, 4)
    assert len(stats.examples) == 2 and "s.tsv:2" in stats.examples[0]


def test_skip_mode_trec_recovers_after_bad_records(write):
    content = ("<DOC><DOCNO>1</DOCNO>a</DOC>\n<DOC>\nbroken\n<DOC><DOCNO>2</DOCNO>b</DOC>\n"
               "junk\n<DOC><DOCNO>3</DOCNO>c</DOC>\n<DOC>\n<DOCNO>4</DOCNO>\n")
    stats = ReadStats()
    assert ids(read_collection(write("s.trec", content), on_error="skip", stats=stats)) == [
        "1", "2", "3"]
    assert stats.skipped == {"unterminated": 2, "malformed": 1}


def test_reading_is_streamed(write):
    path = write("s.jsonl", '{"_id": "1", "text": "a"}\n{broken\n\n')
    docs = read_collection(path)
    assert next(docs) == Document("1", "a")
    with pytest.raises(InputError, match="s.jsonl:2"):
        next(docs)
    trec = write("s.trec", "<DOC><DOCNO>1</DOCNO>a</DOC>\n<DOC>\nno end\n")
    assert next(read_collection(trec)).doc_id == "1"

    def endless():
        n = 0
        while True:
            n += 1
            yield (str(n), "text")

    assert next(read_collection(endless())).doc_id == "1"


def test_call_time_errors(write, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_collection(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="cannot tell the collection format"):
        read_collection(write("plain.txt", "just words\n"))
    write("beir/queries.jsonl", '{"_id": "q1", "text": "a query"}\n')
    with pytest.raises(InputError, match="no corpus.jsonl"):  # a BEIR folder lacking it
        read_collection(tmp_path / "beir")
    with pytest.raises(ConfigError, match="on_error"):
        read_collection(write("x.tsv", "1\ta\n"), on_error="ignore")
    with pytest.raises(ConfigError, match="format"):
        read_collection(write("y.tsv", "1\ta\n"), format="csv")


def test_corrupt_gzip_is_an_input_error(write):
    path = write("c.tsv.gz", "1\ta\n" * 1000)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(InputError, match="corrupt compressed data"):
        list(read_collection(path))


def test_count_documents(write, tmp_path):
    assert count_documents(write("a.tsv", "id\ttext\n1\ta\n2\tb")) == 2
    assert count_documents(write("b.jsonl.gz", '{"_id": "1", "text": "a"}\n' * 3)) == 3
    trec = "<DOC><DOCNO>1</DOCNO>x</DOC><DOC><DOCNO>2</DOCNO>y</DOC>\n<doc>\n<DOCNO>3</DOCNO>\n"
    assert count_documents(write("c.trec", trec + "</doc>\n")) == 3
    write("beir/corpus.jsonl", '{"_id": "1", "text": "a"}\n')
    assert count_documents(tmp_path / "beir") == 1
    assert count_documents(write("e.tsv", "")) == 0
    assert count_documents([("1", "a")]) == 1
    assert count_documents(iter([("1", "a")])) is None


def test_data_room_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, latesearch.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_blank_lines_at_the_end_are_ignored(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n{"_id": "b", "text": "y"}\n\n  \n')
    assert [d.doc_id for d in read_collection(path)] == ["a", "b"]
