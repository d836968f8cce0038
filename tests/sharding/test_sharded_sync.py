"""`sync` of a folder of documents into a sharded index: new files added, changed ones
replaced, removed ones deleted, each document in the shard its id routes to."""

from __future__ import annotations

import json
import os

from latesearch import ShardedIndex
from latesearch.cli.main import main
from latesearch.sharding.routing import shard_of

FAST = {"progress": False, "nbits": None, "precision": 32, "chunk_size": 4, "ann": False}


def stored(index: ShardedIndex) -> dict[str, dict]:
    hits = index.search("the", k=100, mode="exact", return_text=True, return_metadata=True)
    return {h.doc_id: {"text": h.text, "mtime": h.metadata["mtime"]} for h in hits}


def shard_ids(index: ShardedIndex) -> list[set[str]]:
    from latesearch import Index

    return [set(Index.load(index.folder / name, index.model).store.doc_ids)
            for name in index.manifest.shards]  # fmt: skip


def test_sync_a_folder_into_a_sharded_index(tmp_path, tiny_colbert, capsys):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    for i, text in enumerate(("the protein folds in the cell", "the dog chased a cat",
                              "late interaction search", "a gene codes a protein")):  # fmt: skip
        (root / ("sub" if i % 2 else ".") / f"f{i}.txt").write_text(text, encoding="utf-8")
    index = ShardedIndex.build(root, tmp_path / "ix", tiny_colbert, n_shards=2, **FAST)
    before = stored(index)
    assert index.sync(root).files == "0 new, 0 changed, 0 removed file(s)"
    assert stored(index) == before

    (root / "f0.txt").write_text("the cell divides", encoding="utf-8")
    os.utime(root / "sub" / "f1.txt", (1_600_000_000, 1_600_000_000))
    (root / "f2.txt").unlink()
    (root / "new.txt").write_text("the new drug study", encoding="utf-8")
    summary = index.sync(root)
    assert summary.files == "1 new, 2 changed, 1 removed file(s)" and summary.docs == 4
    after = stored(index)
    assert sorted(after) == ["f0.txt", "new.txt", "sub/f1.txt", "sub/f3.txt"]
    assert after["f0.txt"]["text"] == "the cell divides"
    assert after["sub/f1.txt"]["mtime"] == 1_600_000_000
    for shard, ids in enumerate(shard_ids(index)):  # each id in the shard it routes to
        assert all(shard_of(i, 2) == shard for i in ids)

    (root / "new.txt").unlink()
    assert main(["update", str(index.folder), "--sync", str(root), "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == "0 new, 0 changed, 1 removed file(s)" and out["docs"] == 3
