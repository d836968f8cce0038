"""Every file of an index has a checksum: chunk arrays and doclens in their chunk entry, the
ids, doc store and codec in the manifest's `files`, each component in its own
checksums.json. Opening checks sizes; `verify` re-hashes; updates and compression refuse
damaged inputs instead of writing them under fresh checksums."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from latesearch import Index
from latesearch.errors import IndexCorruptError
from latesearch.indexing import IndexStore, compress_index
from latesearch.indexing.checksums import CHECKSUMS


def flip(path, offset=-16):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.fixture
def index(tmp_path, tiny_colbert, docs):
    """An uncompressed index with both components: the most kinds of file."""
    return Index.build(docs, tmp_path / "index", tiny_colbert, nbits=None, bm25=True,
                       ann=True, progress=False).folder  # fmt: skip


def every_file(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("nbits", [None, 2])
def test_every_file_is_covered(tmp_path, tiny_colbert, docs, nbits):
    folder = Index.build(docs, tmp_path / "i", tiny_colbert, nbits=nbits, bm25=True,
                         progress=False).folder  # fmt: skip
    report = IndexStore.open(folder).verify()
    assert report.complete and report.unchecked == []
    assert report.files == len(every_file(folder)) and report.bytes > 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"docs.sqlite", "doc_ids.bin", "doc_ids.offsets.npy"} <= set(manifest["files"])
    assert all(chunk["doclens_sha256"] for chunk in manifest["chunks"])
    assert (folder / "bm25" / CHECKSUMS).is_file()


@pytest.mark.parametrize(
    "name",
    ["docs.sqlite", "doc_ids.bin", "doc_ids.offsets.npy", "chunks/00000.doclens.npy",
     "bm25/params.index.json", "ann/token_to_doc.npy"],  # fmt: skip
)
def test_damage_to_any_file_is_found_by_verify(index, name):
    path = index / name
    if not path.is_file():  # component file names come from their libraries
        path = sorted((index / name.split("/")[0]).glob("*.npy"))[0]
    if path.name.endswith("doclens.npy"):  # keep the sum (the open check) but move tokens
        lens = np.load(path)
        lens[0], lens[1] = lens[0] + 1, lens[1] - 1
        np.save(path, lens)
    else:
        flip(path)
    store = IndexStore.open(index)  # same sizes: only hashing can tell
    with pytest.raises(IndexCorruptError, match=path.name):
        store.verify()


def test_a_file_of_the_wrong_size_is_refused_on_open_and_on_use(index):
    with open(index / "docs.sqlite", "ab") as handle:
        handle.write(b"\0" * 10)
    with pytest.raises(IndexCorruptError, match="docs.sqlite: .* bytes, its checksum record"):
        IndexStore.open(index)
    (index / "docs.sqlite").write_bytes((index / "docs.sqlite").read_bytes()[:-10])
    bm25 = sorted((index / "bm25").glob("*.npy"))[0]
    bm25.write_bytes(bm25.read_bytes()[:-4])
    loaded = Index.load(index)  # components are checked when a mode needs them
    with pytest.raises(IndexCorruptError, match=bm25.name):
        loaded.search("protein", k=3, mode="rerank")


def test_an_update_refuses_a_damaged_doc_store(index, tiny_colbert):
    before = every_file(index)
    with sqlite3.connect(index / "docs.sqlite") as conn:
        conn.execute("UPDATE docs SET text = 'changed' WHERE idx = 0")  # same size
    with pytest.raises(IndexCorruptError, match="docs.sqlite: checksum mismatch"):
        Index.load(index, tiny_colbert).delete(["doc-3"])
    assert every_file(index) == before  # nothing published


def test_an_update_refuses_a_damaged_component(index, tiny_colbert):
    flip(index / "ann" / "token_to_doc.npy")
    with pytest.raises(IndexCorruptError, match="token_to_doc.npy: checksum mismatch"):
        Index.load(index, tiny_colbert).delete(["doc-3"])


def test_updates_and_added_components_are_sealed(index, tiny_colbert):
    loaded = Index.load(index, tiny_colbert)
    loaded.add([{"_id": "new", "text": "protein river"}], progress=False)
    loaded.delete(["doc-3"])
    assert loaded.verify().complete
    loaded.add_bm25()
    assert IndexStore.open(index).verify().complete


def test_compressing_a_damaged_index_is_refused(index, tmp_path):
    flip(index / "chunks" / "00000.embeddings.npy")
    with pytest.raises(IndexCorruptError, match="00000.embeddings.npy"):
        compress_index(index, tmp_path / "compressed")
    assert not (tmp_path / "compressed").exists()


def test_an_index_from_before_file_checksums_reports_what_it_cannot_check(index, capsys):
    from latesearch.cli.main import main

    manifest = json.loads((index / "manifest.json").read_text())
    del manifest["files"]
    for chunk in manifest["chunks"]:
        chunk["doclens_sha256"] = ""
    (index / "manifest.json").write_text(json.dumps(manifest))
    (index / "bm25" / CHECKSUMS).unlink()
    report = IndexStore.open(index).verify()
    assert not report.complete
    assert {"docs.sqlite", "doc_ids.bin", "chunks/00000.doclens.npy"} <= set(report.unchecked)
    assert any(name.startswith("bm25/") for name in report.unchecked)
    assert main(["verify", str(index)]) == 0
    assert "no checksum" in capsys.readouterr().out
