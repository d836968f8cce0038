"""Indexes of a folder of documents: `Index.build(folder)`, and syncing the index with the
folder (new files added, changed ones replaced, removed ones deleted), in Python and from
the command line."""

from __future__ import annotations

import json
import os

import pytest

from latesearch.cli.main import main
from latesearch.errors import InputError
from latesearch.index import Index

FAST = {"progress": False, "nbits": None, "precision": 32, "chunk_size": 4, "ann": False}


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "cells.txt").write_text("the protein folds inside the cell", encoding="utf-8")
    (root / "sub" / "genes.md").write_text("# Genes\n\na gene codes a protein", encoding="utf-8")
    (root / "page.html").write_text("<title>Dogs</title><p>the dog chased a cat</p>")
    records = ['{"_id": "1", "text": "late interaction search"}',
               '{"_id": "2", "text": "passage retrieval model"}']  # fmt: skip
    (root / "recs.jsonl").write_text("\n".join(records) + "\n")
    return root


def stored(index: Index) -> dict[str, dict]:
    docs = index.store.documents(range(len(index)))
    return {d["doc_id"]: d for d in docs}


def test_a_folder_builds_an_index_with_paths_as_ids(folder, tmp_path, tiny_colbert):
    index = Index.build(folder, tmp_path / "idx", tiny_colbert, **FAST)
    docs = stored(index)
    assert sorted(docs) == ["cells.txt", "page.html", "recs.jsonl#1", "recs.jsonl#2",
                            "sub/genes.md"]  # fmt: skip
    assert docs["sub/genes.md"]["title"] == "Genes"
    assert docs["page.html"]["metadata"]["path"] == "page.html"
    hits = index.search("protein cell", k=5, mode="exact", filter={"path": "cells.txt"})
    assert [h.doc_id for h in hits] == ["cells.txt"]


def test_sync_adds_replaces_and_deletes_what_changed(folder, tmp_path, tiny_colbert):
    index = Index.build(folder, tmp_path / "idx", tiny_colbert, **FAST)
    before = stored(index)
    unchanged = index.sync(folder, progress=False)
    assert unchanged.files == "0 new, 0 changed, 0 removed file(s)" and unchanged.added == 0
    assert stored(index) == before

    (folder / "cells.txt").write_text("the cell divides", encoding="utf-8")  # size changes
    os.utime(folder / "sub" / "genes.md", (1_600_000_000, 1_600_000_000))  # mtime changes
    (folder / "page.html").unlink()
    (folder / "recs.jsonl").write_text('{"_id": "1", "text": "late interaction search"}\n')
    (folder / "new.txt").write_text("a new drug study", encoding="utf-8")
    summary = index.sync(folder, progress=False)
    assert summary.files == "1 new, 3 changed, 1 removed file(s)"
    after = stored(index)
    assert sorted(after) == ["cells.txt", "new.txt", "recs.jsonl#1", "sub/genes.md"]
    assert after["cells.txt"]["text"] == "the cell divides"
    assert after["sub/genes.md"]["metadata"]["mtime"] == 1_600_000_000
    # the same documents, texts and metadata as a fresh build of the folder
    fresh = Index.build(folder, tmp_path / "fresh", tiny_colbert, **FAST)
    assert stored(fresh) == after
    ours = {h.doc_id: h.score for h in index.search("drug study", k=4, mode="exact")}
    theirs = {h.doc_id: h.score for h in fresh.search("drug study", k=4, mode="exact")}
    assert ours.keys() == theirs.keys()
    assert all(ours[i] == pytest.approx(theirs[i], abs=1e-4) for i in ours)
    assert index.sync(folder, progress=False).added == 0


def test_sync_refuses_a_file_it_cannot_read_and_changes_nothing(folder, tmp_path, tiny_colbert):
    index = Index.build(folder, tmp_path / "idx", tiny_colbert, **FAST)
    before = stored(index)
    (folder / "bad.txt").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InputError, match=r"bad\.txt"):
        index.sync(folder, progress=False)
    assert stored(index) == before


def test_update_sync_from_the_command_line(folder, tmp_path, tiny_bert_dir, capsys):
    target = tmp_path / "idx"
    argv = ["index", str(folder), str(target), "--model", str(tiny_bert_dir), "--quiet",
            "--no-ann", "--nbits", "none", "--chunk-size", "4", "--doc-maxlen", "16",
            "--window", "8", "--window-stride", "6", "--max-windows", "3"]  # fmt: skip
    assert main(argv) == 0
    assert Index.load(target).store.manifest.config.windows == (8, 6, 3)
    (folder / "recs.jsonl").unlink()
    capsys.readouterr()
    assert main(["update", str(target), "--sync", str(folder), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == "0 new, 0 changed, 1 removed file(s)"
    assert summary["deleted"] == 2 and summary["docs"] == 3
    assert main(["update", str(target), "--sync", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_sync_leaves_documents_not_read_from_a_folder(folder, tmp_path, tiny_colbert):
    index = Index.build(folder, tmp_path / "idx", tiny_colbert, **FAST)
    index.add([{"_id": "mine", "text": "added by hand", "path": "elsewhere.txt"}],
              progress=False)  # fmt: skip
    (folder / "cells.txt").unlink()
    summary = index.sync(folder, progress=False)
    assert summary.files == "0 new, 0 changed, 1 removed file(s)" and summary.deleted == 1
    assert "mine" in stored(index) and "cells.txt" not in stored(index)
