"""Folders of documents: one document per text, Markdown or HTML file, one per JSONL/TSV
record; ids from relative paths; the file's path, mtime and size as metadata; bad files
named in errors."""

from __future__ import annotations

import os

import pytest

from latesearch.data import ReadStats, check_collection, count_documents, read_collection
from latesearch.data.folders import file_id, folder_files
from latesearch.errors import ConfigError, InputError


@pytest.fixture
def folder(write, tmp_path):
    write("docs/a.txt", "plain text\nsecond line\n")
    write("docs/sub/my notes.md", "# Notes Title\n\nSome *markdown* here.\n")
    write("docs/page.html", "<html><head><title>A Page</title><style>p{color:red}</style>"
                            "</head><body><h1>Heading</h1><p>Para with <b>bold</b> words"
                            "</p><script>var hidden = 1;</script></body></html>")  # fmt: skip
    write("docs/recs.jsonl", '{"_id": "1", "text": "record one", "lang": "en"}\n'
                             '{"_id": "2", "text": "record two", "title": "Two"}\n')  # fmt: skip
    write("docs/rows.tsv", "x1\tfirst row\nx2\tsecond row\n")
    write("docs/.hidden.txt", "not read")
    write("docs/.git/HEAD.txt", "not read")
    write("docs/image.png", b"\x89PNG not a document")
    return tmp_path / "docs"


def test_every_kind_of_file_gives_documents(folder):
    docs = {d.doc_id: d for d in read_collection(folder)}
    assert sorted(docs) == ["a.txt", "page.html", "recs.jsonl#1", "recs.jsonl#2",
                            "rows.tsv#x1", "rows.tsv#x2", "sub/my%20notes.md"]  # fmt: skip
    assert docs["a.txt"].text == "plain text\nsecond line\n" and docs["a.txt"].title == ""
    md = docs["sub/my%20notes.md"]
    assert md.title == "Notes Title" and md.text == "Some *markdown* here.\n"
    html = docs["page.html"]
    assert html.title == "A Page"
    assert html.text == "Heading\nPara with bold words"  # no script, no style, inline runs on
    assert docs["recs.jsonl#1"].metadata["lang"] == "en"
    assert docs["recs.jsonl#2"].title == "Two" and docs["rows.tsv#x2"].text == "second row"


def test_metadata_holds_path_mtime_and_size(folder):
    os.utime(folder / "a.txt", (1_700_000_000.5, 1_700_000_000.5))
    docs = {d.doc_id: d for d in read_collection(folder)}
    assert docs["a.txt"].metadata == {"path": "a.txt", "mtime": 1_700_000_000.5, "size": 23}
    assert docs["sub/my%20notes.md"].metadata["path"] == "sub/my notes.md"
    assert docs["recs.jsonl#2"].metadata["path"] == "recs.jsonl"
    files = folder_files(folder)
    assert sorted(files) == ["a.txt", "page.html", "recs.jsonl", "rows.tsv", "sub/my notes.md"]
    assert files["a.txt"].mtime == 1_700_000_000.5 and files["a.txt"].size == 23


def test_ids_escape_whitespace_and_percent_reversibly():
    assert file_id("a b/c%d\te.txt") == "a%20b/c%25d%09e.txt"


def test_order_is_stable_and_beir_folders_still_read_corpus_jsonl(folder, write, tmp_path):
    assert [d.doc_id for d in read_collection(folder)] == [
        d.doc_id for d in read_collection(folder)
    ]
    write("beir/corpus.jsonl", '{"_id": "d1", "text": "beir"}\n')
    write("beir/queries.jsonl", '{"_id": "q1", "text": "query"}\n')
    assert [d.doc_id for d in read_collection(tmp_path / "beir")] == ["d1"]
    (tmp_path / "beir" / "corpus.jsonl").unlink()  # queries.jsonl alone: not documents
    with pytest.raises(InputError, match="no corpus.jsonl"):
        read_collection(tmp_path / "beir")
    assert count_documents(folder) is None
    with pytest.raises(ConfigError, match="folder of documents"):
        read_collection(folder, format="jsonl")


def test_a_bad_file_is_named_or_skipped(folder, write):
    write("docs/bad.txt", b"caf\xe9 latin-1")
    with pytest.raises(InputError, match=r"bad\.txt.*UTF-8"):
        list(read_collection(folder))
    stats = ReadStats()
    ids = [d.doc_id for d in read_collection(folder, on_error="skip", stats=stats)]
    assert "bad.txt" not in ids and len(ids) == 7 and stats.skipped == {"bad_utf8": 1}


def test_a_bad_record_is_located_in_its_file(folder, write):
    write("docs/recs.jsonl", '{"_id": "1", "text": "ok"}\n{"text": "no id"}\n')
    with pytest.raises(InputError, match=r"recs\.jsonl:2"):
        list(read_collection(folder))
    write("docs/recs.jsonl", '{"_id": "1", "text": "ok", "path": "mine"}\n')
    with pytest.raises(InputError, match=r"recs\.jsonl:1.*'path' is set by the folder reader"):
        list(read_collection(folder))


def test_an_unreadable_file_is_named(folder):
    (folder / "gone.txt").symlink_to(folder / "nowhere.txt")  # listed, but cannot be read
    with pytest.raises(InputError, match=r"gone\.txt.*cannot read"):
        list(read_collection(folder))
    stats = ReadStats()
    assert len(list(read_collection(folder, on_error="skip", stats=stats))) == 7
    assert stats.skipped == {"unreadable": 1}


def test_an_empty_folder_has_nothing_to_index(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match="no documents"):
        check_collection(tmp_path / "empty")
