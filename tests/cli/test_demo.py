"""`latesearch demo` end to end on the embedded collection, with a tiny random model."""

from __future__ import annotations

import json

from latesearch.cli.demo import demo_files
from latesearch.cli.main import main


def test_demo_files_are_shipped_and_consistent():
    files = demo_files()
    ids = {json.loads(line)["_id"] for line in files["collection"].open(encoding="utf-8")}
    assert len(ids) >= 200
    judged = {line.split()[2] for line in files["qrels"].open(encoding="utf-8")}
    assert judged <= ids  # every judged document is in the collection


def test_demo_indexes_searches_and_scores(tiny_bert_dir, tmp_path, capsys):
    folder = tmp_path / "demo-index"
    code = main(["demo", "--model", str(tiny_bert_dir), "--index-dir", str(folder), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "indexed 409 documents" in out
    assert "| latesearch (e2e) |" in out and "| BM25 (bm25s) |" in out
    assert (folder / "manifest.json").is_file() and (folder / "bm25").is_dir()
