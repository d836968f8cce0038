"""`latesearch delete`: by ids or by filter, in a folder or on a server; a bad filter is
refused naming its field, with nothing deleted."""

from __future__ import annotations

import json

import pytest

from latesearch import Index
from latesearch.cli.main import main


@pytest.fixture
def index(tmp_path, tiny_colbert):
    with open(tmp_path / "corpus.jsonl", "w", encoding="utf-8") as out:
        for i in range(12):
            row = {"_id": f"d{i}", "text": f"protein cell music {i}", "year": 2000 + i % 4}
            out.write(json.dumps(row) + "\n")
    return Index.build(tmp_path / "corpus.jsonl", tmp_path / "index", tiny_colbert,
                       progress=False)  # fmt: skip


def run(capsys, *argv):
    code = main(["delete", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def held(index) -> set[str]:
    return {str(i) for i in Index.load(index.folder).store.doc_ids}


def test_delete_by_filter_and_by_ids_in_a_folder(index, capsys):
    code, out, _ = run(capsys, str(index.folder), "--filter", '{"year": {"$gte": 2002}}',
                       "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["summary"]["deleted"] == 6
    assert held(index) == {f"d{i}" for i in range(12) if i % 4 < 2}
    code, out, _ = run(capsys, str(index.folder), "d0", "d1")
    assert code == 0 and "deleted 2" in out and "4 documents" in out
    code, _, err = run(capsys, str(index.folder), "d0")
    assert code == 2 and "d0" in err and len(held(index)) == 4
    code, _, err = run(capsys, str(index.folder), "--filter", '{"year": {"$like": 1}}')
    assert code == 2 and "filter.year.$like" in err and len(held(index)) == 4
    code, _, err = run(capsys, str(index.folder))
    assert code == 2 and "--filter" in err
    Index.load(index.folder).verify()


def test_delete_by_filter_on_a_server(index, capsys):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from latesearch.serving import RunningServer, SearchService

    with RunningServer(SearchService(index, api_key="k"), port=0, quiet=True) as server:
        code, _, err = run(capsys, server.url, "--filter", '{"year": 2001}')
        assert code == 2 and "API key" in err
        code, out, _ = run(capsys, server.url, "--filter", '{"year": 2001}', "--api-key", "k")
        assert code == 0 and "deleted 3" in out and "9 documents" in out
    assert held(index) == {f"d{i}" for i in range(12) if i % 4 != 1}
