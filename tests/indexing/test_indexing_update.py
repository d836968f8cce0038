"""update_index: additions and deletions give the index a fresh build of the same documents
would give, atomically; bad input and interruptions leave the old index as it was."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch import ColBERT
from latesearch.errors import ConfigError, IndexCorruptError, InputError
from latesearch.indexing import (
    IndexBusyError,
    IndexConfig,
    IndexStore,
    UnknownDocumentError,
    build_index,
    update_index,
    updating_folder,
)
from latesearch.indexing.docstore import DocStoreWriter
from latesearch.indexing.files import writer_lock

CONFIG = IndexConfig().replace(chunk_size=8, group_size=16, batch_size=4, precision=32, nbits=None)


def build(docs, folder, model, write_jsonl):
    path = write_jsonl(folder.with_suffix(".jsonl"), docs)
    return build_index(path, folder, model, CONFIG, progress=False)


def snapshot(folder) -> dict:
    """Everything an update must not change when it fails: every file's bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def assert_same_documents(store: IndexStore, reference: IndexStore) -> None:
    """Same ids in the same order, same texts, the same embeddings document by document."""
    assert list(store.doc_ids) == list(reference.doc_ids)
    n = store.n_docs
    assert store.documents(range(n)) == reference.documents(range(n))
    assert np.array_equal(store.doclens, reference.doclens)
    ours, mask = store.gather(np.arange(n))
    theirs, _ = reference.gather(np.arange(n))
    # batches are padded differently in the two builds: equal up to float rounding
    assert np.allclose(ours[mask].numpy(), theirs[mask].numpy(), atol=1e-5)
    store.verify()  # every chunk's checksum matches its manifest entry
    assert store.n_embeddings == int(store.doclens.sum())


@pytest.fixture
def base(tmp_path, docs, tiny_colbert, write_jsonl):
    build(docs[:30], tmp_path / "idx", tiny_colbert, write_jsonl).close()
    return tmp_path / "idx"


def test_add_equals_a_fresh_build(base, tmp_path, docs, tiny_colbert, write_jsonl):
    new = write_jsonl(tmp_path / "new.jsonl", docs[30:])
    store, summary = update_index(base, add=new, model=tiny_colbert, progress=False)
    reference = build(docs, tmp_path / "ref", tiny_colbert, write_jsonl)
    assert_same_documents(store, reference)
    assert (summary.added, summary.deleted, summary.docs) == (10, 0, 40)
    assert store.manifest.stats["updates"][-1]["added"] == 10
    assert not updating_folder(base).exists() and not base.with_name("idx.adding").exists()


def test_delete_equals_a_fresh_build(base, tmp_path, docs, tiny_colbert, write_jsonl):
    gone = {"doc-0", *(f"doc-{i}" for i in range(8, 16))}  # all of chunk 1, one of chunk 0
    store, summary = update_index(base, delete=sorted(gone) + ["doc-0"])  # dups counted once
    kept = [d for d in docs[:30] if d["_id"] not in gone]
    reference = build(kept, tmp_path / "ref", tiny_colbert, write_jsonl)
    assert_same_documents(store, reference)
    assert summary.deleted == len(gone) and store.n_docs == 21
    assert [c.n_docs for c in store.chunks] == [7, 8, 6]  # the emptied chunk is gone
    with pytest.raises(UnknownDocumentError, match="doc-9"):
        store.doc_index("doc-9")
    assert store.doc_index("doc-16") == 16 - 9  # moved down past the deleted ones


def test_delete_and_add_in_one_update(base, tmp_path, docs, tiny_colbert, write_jsonl):
    new = write_jsonl(tmp_path / "new.jsonl", docs[30:])
    store, _ = update_index(
        base, add=new, delete=["doc-3", "doc-29"], model=tiny_colbert, progress=False
    )
    kept = [d for d in docs if d["_id"] not in ("doc-3", "doc-29")]
    assert_same_documents(store, build(kept, tmp_path / "ref", tiny_colbert, write_jsonl))


def test_replace_moves_the_new_version_to_the_end(base, tmp_path, docs, tiny_colbert, write_jsonl):
    changed = [{"_id": "doc-4", "title": "", "text": "protein gene drug"}, *docs[30:32]]
    new = write_jsonl(tmp_path / "new.jsonl", changed)
    store, summary = update_index(base, add=new, model=tiny_colbert, replace=True, progress=False)
    assert (summary.added, summary.replaced, summary.deleted) == (3, 1, 0)
    expected = [d for d in docs[:30] if d["_id"] != "doc-4"] + changed
    assert_same_documents(store, build(expected, tmp_path / "ref", tiny_colbert, write_jsonl))


def test_adding_an_existing_id_is_an_error_and_changes_nothing(base, tmp_path, docs, tiny_colbert,
                                                               write_jsonl):  # fmt: skip
    before = snapshot(base)
    new = write_jsonl(tmp_path / "new.jsonl", [*docs[30:33], docs[2], docs[6]])
    with pytest.raises(InputError, match=r"'doc-2' \(and 1 more\) is already in the index"):
        update_index(base, add=new, model=tiny_colbert, progress=False)
    assert snapshot(base) == before
    with pytest.raises(InputError, match="'doc-6' is already") as err:  # located in a list
        update_index(base, add=[*docs[30:32], docs[6]], model=tiny_colbert, progress=False)
    assert (err.value.path, err.value.field) == ("documents[2]", "doc_id")
    assert snapshot(base) == before


def test_an_id_deleted_in_the_same_update_may_be_added(base, tmp_path, docs, tiny_colbert,
                                                         write_jsonl):  # fmt: skip
    new = write_jsonl(tmp_path / "new.jsonl", [{"_id": "doc-4", "title": "", "text": "cell"}])
    store, summary = update_index(base, add=new, delete=["doc-4"], model=tiny_colbert,
                                  progress=False)  # fmt: skip
    assert (summary.added, summary.deleted, summary.replaced) == (1, 1, 0)
    assert store.documents([store.doc_index("doc-4")])[0]["text"] == "cell"


def test_iterables_of_documents_can_be_added(base, docs, tiny_colbert):
    pairs = ((d["_id"], d["text"]) for d in docs[30:])  # a generator: read twice inside
    store, summary = update_index(base, add=pairs, model=tiny_colbert, progress=False)
    assert summary.added == 10 and store.doc_ids[-1] == "doc-39"


def test_bad_rows_are_reported_before_anything_is_encoded(base, tmp_path, docs, tiny_colbert,
                                                          write_jsonl, monkeypatch):  # fmt: skip
    new = write_jsonl(tmp_path / "new.jsonl", docs[30:33])
    with open(new, "a", encoding="utf-8") as out:
        out.write('{"_id": "x", "text": 5}\n')
    before = snapshot(base)
    monkeypatch.setattr(tiny_colbert, "forward_documents", lambda *a: pytest.fail("encoded"))
    with pytest.raises(InputError, match=r"new\.jsonl:4 \(field 'text'\)"):
        update_index(base, add=new, model=tiny_colbert, progress=False)
    assert snapshot(base) == before


def test_unknown_ids_raise_or_are_skipped(base):
    before = snapshot(base)
    with pytest.raises(UnknownDocumentError, match="'nope'") as err:
        update_index(base, delete=["doc-1", "nope"])
    assert err.value.field == "delete"
    assert snapshot(base) == before
    store, summary = update_index(base, delete=["doc-1", "nope"], missing="skip")
    assert summary.unknown == ["nope"] and summary.deleted == 1 and store.n_docs == 29


def test_emptying_the_index_is_refused(base, docs):
    before = snapshot(base)
    with pytest.raises(InputError, match="empty"):
        update_index(base, delete=[d["_id"] for d in docs[:30]])
    assert snapshot(base) == before


def test_nothing_to_do_and_missing_model_are_errors(base, tmp_path, docs, write_jsonl):
    with pytest.raises(InputError, match="nothing to update"):
        update_index(base)
    new = write_jsonl(tmp_path / "new.jsonl", docs[30:])
    with pytest.raises(ConfigError, match="model"):
        update_index(base, add=new)


def test_another_model_is_refused(base, tmp_path, docs, tiny_bert_dir, write_jsonl):
    other = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8, doc_maxlen=24)
    before = snapshot(base)
    new = write_jsonl(tmp_path / "new.jsonl", docs[30:])
    with pytest.raises(ConfigError, match="fingerprint"):
        update_index(base, add=new, model=other, progress=False)
    assert snapshot(base) == before
    assert not base.with_name("idx.adding").exists()


def test_components_without_an_updater_are_refused(base):
    (base / "extra").mkdir()
    with pytest.raises(ConfigError, match=r"no updater for the component\(s\) \['extra'\]"):
        update_index(base, delete=["doc-1"])
    calls = []
    store, summary = update_index(
        base, delete=["doc-1"], updaters={"extra": lambda *args: calls.append(args)}
    )
    folder, old, new, change = calls[0]
    assert folder == updating_folder(base) / "extra" and summary.components == ("extra",)
    assert (old.n_docs, new.n_docs, change.doc_map[1], change.doc_map[2]) == (30, 29, -1, 1)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_update_leaves_the_index_as_it_was(base, tmp_path, docs, tiny_colbert,
                                                          write_jsonl, error):  # fmt: skip
    (base / "extra").mkdir()
    before = snapshot(base)

    def crash(*args):
        raise error("simulated crash while updating a component")

    new = write_jsonl(tmp_path / "new.jsonl", docs[30:])
    with pytest.raises(error):
        update_index(base, add=new, delete=["doc-2"], model=tiny_colbert, progress=False,
                     updaters={"extra": crash})  # fmt: skip
    assert snapshot(base) == before
    assert not updating_folder(base).exists() and not base.with_name("idx.adding").exists()
    IndexStore.open(base).verify()


def test_leftovers_of_a_killed_update_are_cleared(base, docs):
    stale = updating_folder(base)
    (stale / "chunks").mkdir(parents=True)
    (stale / "manifest.json").write_text("{half written")
    store, _ = update_index(base, delete=["doc-1"])
    assert store.n_docs == 29 and not stale.exists()


def test_a_concurrent_writer_is_refused(base):
    with writer_lock(base), pytest.raises(IndexBusyError, match="another build or update"):
        update_index(base, delete=["doc-1"])


def test_open_points_at_the_copy_a_crash_between_renames_left(base):
    aside = base.with_name(".idx.old-1234")
    base.rename(aside)
    with pytest.raises(IndexCorruptError, match=r"previous complete version in .*\.idx\.old-1234"):
        IndexStore.open(base)


def test_docstore_remove_keeps_indices_contiguous(tmp_path):
    writer = DocStoreWriter(tmp_path / "docs.sqlite")
    writer.add(0, [(f"d{i}", "", f"text {i}", None) for i in range(10)])
    writer.remove(np.array([0, 4, 5, 9]))
    rows = writer.conn.execute("SELECT idx, doc_id FROM docs ORDER BY idx").fetchall()
    assert rows == [(0, "d1"), (1, "d2"), (2, "d3"), (3, "d6"), (4, "d7"), (5, "d8")]
    writer.close()
