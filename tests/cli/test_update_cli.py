"""`latesearch update`: --add, --replace, --delete / --delete-file, errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from latesearch import Index
from latesearch.cli.main import main


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def doc(i: int, text: str = "") -> dict:
    return {"_id": f"d{i}", "title": "", "text": text or f"late interaction study {i} cell"}


@pytest.fixture
def folder(tmp_path, tiny_colbert):
    corpus = write(tmp_path / "corpus.jsonl", [doc(i) for i in range(20)])
    Index.build(corpus, tmp_path / "index", tiny_colbert, bm25=True, progress=False)
    return tmp_path / "index"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["update", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_delete_and_replace(folder, tmp_path, capsys):
    new = write(tmp_path / "new.jsonl", [doc(20), doc(21), doc(3, "protein gene drug")])
    code, out, err = run(capsys, folder, "--add", new, "--delete", "d5", "d6", "--quiet")
    assert code == 2 and "'d3' is already in the index" in err and "--replace" in err
    code, out, _ = run(capsys, folder, "--add", new, "--replace", "--delete", "d5", "d6",
                       "--quiet", "--json")  # fmt: skip
    assert code == 0
    summary = json.loads(out)
    assert (summary["added"], summary["replaced"], summary["deleted"], summary["docs"]) == (
        3, 1, 2, 20,
    )  # fmt: skip
    index = Index.load(folder)
    assert index.rerank("drug", ["d3"], return_text=True)[0].text == "protein gene drug"
    assert "d5" not in {h.doc_id for h in index.search("study", k=30, mode="rerank")}


def test_delete_file_and_missing_ids(folder, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("d1\n\n  d2  \nnot-there\n")
    code, _, err = run(capsys, folder, "--delete-file", ids)
    assert code == 2 and "unknown document id 'not-there'" in err and "--skip-missing" in err
    assert len(Index.load(folder)) == 20
    code, out, err = run(capsys, folder, "--delete-file", ids, "--skip-missing")
    assert code == 0 and "18 documents" in out and "'not-there'" in err
    assert len(Index.load(folder)) == 18


def test_nothing_to_do(folder, capsys):
    code, _, err = run(capsys, folder)
    assert code == 2 and "--add COLLECTION and/or ids to --delete" in err
