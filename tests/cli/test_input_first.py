"""Every command that loads a model reads and checks its input files first: a missing,
empty or malformed file is reported at once, not after the model load (seconds to
minutes with a real model)."""

from __future__ import annotations

import pytest

from latesearch import Index
from latesearch.cli.main import main
from latesearch.modeling.colbert import ColBERT

BAD_FILES = {
    "malformed.jsonl": ('{"_id": "1", "text": \n{"_id": "2", "text": "b"}\n', "malformed.jsonl:1"),
    "empty.jsonl": ("", "no documents"),
    "missing.jsonl": (None, "no such file"),
}


def write_bad(folder, name):
    content, words = BAD_FILES[name]
    path = folder / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    return path, words


@pytest.fixture
def index_folder(tmp_path, tiny_colbert):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "d1", "text": "late interaction"}\n', encoding="utf-8")
    Index.build(corpus, tmp_path / "index", tiny_colbert, progress=False)
    return tmp_path / "index"


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model (alone, or with an index) fails the test."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(ColBERT, "from_pretrained", refuse)
    monkeypatch.setattr(Index, "load", refuse)


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_index_and_update_check_the_collection_first(tmp_path, tiny_bert_dir, index_folder,
                                                     no_model, capsys, name):  # fmt: skip
    path, words = write_bad(tmp_path, name)
    code, err = run(capsys, "index", path, tmp_path / "new", "--model", tiny_bert_dir, "--quiet")
    assert code == 2 and words in err
    assert not (tmp_path / "new").exists() and not (tmp_path / "new.building").exists()
    code, err = run(capsys, "update", index_folder, "--add", path, "--quiet")
    assert code == 2 and words in err


@pytest.mark.parametrize("command", ["search", "evaluate"])
def test_search_and_evaluate_check_the_queries_first(tmp_path, no_model, capsys, command):
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\tfine\nq2\n", encoding="utf-8")  # line 2 lacks its text
    (tmp_path / "qrels.tsv").write_text("q1\t0\td1\t1\n", encoding="utf-8")
    extra = ["--qrels", tmp_path / "qrels.tsv"] if command == "evaluate" else []
    code, err = run(capsys, command, tmp_path / "index", "--queries", queries, *extra)
    assert code == 2 and "queries.tsv:2" in err
