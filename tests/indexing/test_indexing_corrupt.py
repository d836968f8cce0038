"""Opening a damaged index names the file and the problem; bad input names file and line."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from latesearch.errors import IndexCorruptError, InputError
from latesearch.indexing import IndexStore, UnknownDocumentError


@pytest.fixture
def index(build, corpus):
    return build(corpus).folder


def test_missing_folder_and_manifest(index, tmp_path):
    with pytest.raises(IndexCorruptError, match="no index folder"):
        IndexStore.open(tmp_path / "nowhere")
    (index / "manifest.json").unlink()
    with pytest.raises(IndexCorruptError, match="manifest.json: missing"):
        IndexStore.open(index)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=99), "format_version"),
        (lambda m: m.update(dtype="int8"), "dtype"),
        (lambda m: m.update(n_docs=m["n_docs"] + 1), "40 documents"),
        (lambda m: m.pop("chunks"), "missing field"),
        (lambda m: m.update(surprise=1), "unknown field"),
        (lambda m: m["colbert_config"].update(dim=3), "dim"),
    ],
)
def test_bad_manifest(index, change, message):
    path = index / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match=message):
        IndexStore.open(index)


def test_manifest_not_json(index):
    (index / "manifest.json").write_text("{")
    with pytest.raises(IndexCorruptError, match="manifest.json: unreadable"):
        IndexStore.open(index)


def test_truncated_chunk(index):
    path = index / "chunks" / "00002.embeddings.npy"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IndexCorruptError, match="00002.embeddings.npy"):
        IndexStore.open(index)


def test_missing_chunk_files(index):
    (index / "chunks" / "00003.doclens.npy").unlink()
    with pytest.raises(IndexCorruptError, match=r"00003\.doclens\.npy: missing"):
        IndexStore.open(index)


def test_wrong_doclens(index):
    path = index / "chunks" / "00001.doclens.npy"
    lens = np.load(path)
    lens[0] += 1
    np.save(path, lens)
    with pytest.raises(IndexCorruptError, match="00001.doclens.npy"):
        IndexStore.open(index)


def test_chunk_with_wrong_shape(index):
    path = index / "chunks" / "00000.embeddings.npy"
    np.save(path, np.zeros((3, 16), dtype=np.float32))
    with pytest.raises(IndexCorruptError, match="00000.embeddings.npy: holds"):
        IndexStore.open(index)


def test_checksum_mismatch_found_by_verify(index):
    path = index / "chunks" / "00000.embeddings.npy"
    array = np.load(path)
    array[0, 0] += 1
    np.save(path, array)
    store = IndexStore.open(index)  # same shape: only a full check can tell
    with pytest.raises(IndexCorruptError, match="checksum"):
        store.verify()


def test_docstore_and_id_map(index):
    with sqlite3.connect(index / "docs.sqlite") as conn:
        conn.execute("DELETE FROM docs WHERE idx = 39")
    with pytest.raises(IndexCorruptError, match="docs.sqlite: holds 39"):
        IndexStore.open(index)
    (index / "doc_ids.bin").write_bytes(b"x")
    with pytest.raises(IndexCorruptError, match="doc_ids.bin"):
        IndexStore.open(index)


def test_unknown_ids(build, corpus):
    store = build(corpus)
    with pytest.raises(UnknownDocumentError, match="'nope'") as info:
        store.doc_index("nope")
    assert isinstance(info.value, InputError) and isinstance(info.value, KeyError)
    with pytest.raises(InputError, match=r"'x' \(and 1 more\)"):
        store.doc_indices(["doc-1", "x", "y"])


def test_bad_rows_name_file_and_line(build, tmp_path, docs, write_jsonl):
    path = write_jsonl(tmp_path / "bad.jsonl", docs[:4])
    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:5"):
        build(path)
    dup = write_jsonl(tmp_path / "dup.jsonl", [*docs[:3], docs[1]])
    with pytest.raises(InputError, match=r"dup\.jsonl:4.*duplicate"):
        build(dup, "dup")
    tsv = tmp_path / "c.tsv"
    tsv.write_bytes(b"1\tcat\n2\n3\t\xff\xfe\n\n4\tdog\n")
    with pytest.raises(InputError, match=r"c\.tsv:2"):
        build(tsv, "tsv")


def test_skip_mode_counts_what_it_skipped(build, tmp_path, docs, small_config, write_jsonl):
    path = write_jsonl(tmp_path / "bad.jsonl", [*docs[:4], docs[2]])
    with path.open("ab") as f:
        f.write(b'{not json\n\n{"_id": "z", "text": "\xff"}\n{"_id": "q"}\n')
    store = build(path, config=small_config.replace(on_error="skip"))
    assert store.n_docs == 4
    assert store.summary.skipped == {
        "bad_json": 1,
        "blank_line": 1,
        "bad_utf8": 1,
        "duplicate_id": 1,
        "missing_field": 1,
    }
    assert "skipped rows" in str(store.summary)


def test_empty_collection_is_an_error(build, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="no documents"):
        build(empty)
    assert not (tmp_path / "index.building").exists()


def flip(path, offset=-64, count=8):
    data = bytearray(path.read_bytes())
    for i in range(count):
        data[offset + i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_verify_command_and_an_update_never_reblesses_damage(build, corpus, capsys):
    from latesearch.cli.main import main
    from latesearch.indexing import update_index

    folder = build(corpus).folder
    assert main(["verify", str(folder)]) == 0 and "intact" in capsys.readouterr().out
    flip(folder / "chunks" / "00000.embeddings.npy")
    assert main(["verify", str(folder)]) == 2
    assert "00000.embeddings.npy: checksum mismatch" in capsys.readouterr().err
    first = IndexStore.open(folder).doc_ids[0]
    with pytest.raises(IndexCorruptError, match="00000.embeddings.npy"):
        update_index(folder, delete=[first], progress=False)  # rewrites the damaged chunk
    with pytest.raises(IndexCorruptError, match="checksum"):
        IndexStore.open(folder).verify()  # still detectable: nothing was re-blessed


def test_an_undecodable_id_is_named_as_corruption(index):
    path = index / "doc_ids.bin"
    data = bytearray(path.read_bytes())
    data[0] = 0xFF  # not UTF-8
    path.write_bytes(bytes(data))
    store = IndexStore.open(index)
    with pytest.raises(IndexCorruptError, match=r"doc_ids.bin: the id of document 0"):
        store.doc_ids[0]


@pytest.mark.parametrize("bad", ["a b", "a\tb", "a\nb", "a\x00b"])
def test_ids_with_whitespace_or_control_characters_are_refused_at_the_door(build, bad):
    with pytest.raises(InputError, match="an id must be a non-empty string without"):
        build([{"_id": bad, "text": "some text"}, {"_id": "ok", "text": "more"}])


def test_leftovers_of_interrupted_work_are_reported_on_open(index):
    (index.with_name(index.name + ".updating")).mkdir()
    with pytest.warns(UserWarning, match=r"\.updating"):
        IndexStore.open(index)


def test_work_in_progress_is_not_reported_as_a_leftover(index):
    import warnings

    from latesearch.indexing.files import writer_lock

    (index.with_name(index.name + ".adding")).mkdir()
    with writer_lock(index), warnings.catch_warnings():
        warnings.simplefilter("error")
        IndexStore.open(index)


def test_a_damaged_doc_store_read_later_is_named_as_corruption(index):
    store = IndexStore.open(index)
    path = index / "docs.sqlite"
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = b"\xff" * (len(data) - half)
    with open(path, "r+b") as handle:  # in place: the open connection reads these pages
        handle.write(bytes(data))
    with pytest.raises(IndexCorruptError, match="docs.sqlite: unreadable"):
        for start in range(0, store.n_docs, 5):
            store.documents(list(range(start, min(start + 5, store.n_docs))))
