"""Building an index: stored embeddings equal the encoder's, texts in SQLite, chunking,
gather, bucketing, precision, sources, summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latesearch.indexing import IndexStore


def stored(store: IndexStore, i: int) -> torch.Tensor:
    start, stop = int(store.offsets[i]), int(store.offsets[i + 1])
    return torch.from_numpy(np.array(store.token_range(start, stop), dtype=np.float32))


def test_round_trip_equals_encode_documents(build, corpus, docs, tiny_colbert, full_text):
    store = build(corpus)
    expected = tiny_colbert.encode_documents([full_text(d) for d in docs])
    assert store.n_docs == len(docs) and store.dim == 16 and store.dtype == "float32"
    assert list(store.doc_ids) == [d["_id"] for d in docs]
    assert store.n_embeddings == sum(len(e) for e in expected)
    for i, emb in enumerate(expected):
        assert int(store.doclens[i]) == len(emb)
        torch.testing.assert_close(stored(store, i), emb, atol=1e-5, rtol=0)
    assert store.manifest.model_fingerprint == tiny_colbert.fingerprint()
    assert store.colbert_config == tiny_colbert.config


def test_texts_and_titles_in_sqlite(build, corpus, docs):
    store = build(corpus)
    got = store.documents([3, 0, 3])
    assert [g["doc_id"] for g in got] == ["doc-3", "doc-0", "doc-3"]
    assert got[1] == {"doc_id": "doc-0", "title": "title 0", "text": docs[0]["text"],
                      "metadata": {}}
    assert store.doc_index("doc-12") == 12
    indices, unknown = store.doc_indices(["doc-2", "nope", "doc-1"], missing="skip")
    assert indices.tolist() == [2, 1] and unknown == ["nope"]


def test_several_groups_and_chunks(build, corpus, docs):
    store = build(corpus)
    # groups of 16 (16, 16, 8) cut into chunks of at most 6: 6+6+4, 6+6+4, 6+2
    assert [c.n_docs for c in store.chunks] == [6, 6, 4, 6, 6, 4, 6, 2]
    arrays = store.embeddings_flat()
    assert all(isinstance(a, np.memmap) for a in arrays)
    assert sum(len(a) for a in arrays) == store.n_embeddings
    firsts = [first for first, _ in store.vectors.iter_embedding_chunks()]
    assert firsts == [c.first_token for c in store.chunks]
    assert store.offsets[-1] == store.n_embeddings and store.offsets.dtype == np.int64
    t2d = store.token_to_doc()
    assert t2d.dtype == np.int32 and len(t2d) == store.n_embeddings
    probe = np.array([0, 17, store.n_embeddings - 1])
    assert store.vectors.docs_of_tokens(probe).tolist() == t2d[probe].tolist()


def test_gather_pads_in_the_order_asked(build, corpus, docs, tiny_colbert, full_text):
    store = build(corpus)
    wanted = [33, 0, 7, 20, 5, 33]
    emb, mask = store.gather(wanted, dtype=torch.float32)
    expected = tiny_colbert.encode_documents([full_text(docs[i]) for i in wanted])
    assert emb.shape == (len(wanted), max(len(e) for e in expected), 16)
    assert mask.dtype == torch.bool
    for row, e in enumerate(expected):
        assert int(mask[row].sum()) == len(e)
        torch.testing.assert_close(emb[row][mask[row]], e, atol=1e-5, rtol=0)
        assert not emb[row][~mask[row]].any()
    empty, empty_mask = store.gather([])
    assert empty.shape == (0, 0, 16) and empty_mask.shape == (0, 0)
    with pytest.raises(IndexError):
        store.gather([store.n_docs])


def test_length_bucketing_does_not_change_embeddings(build, corpus, small_config):
    on = build(corpus, "on")
    off = build(corpus, "off", config=small_config.replace(length_bucketing=False))
    np.testing.assert_array_equal(on.doclens, off.doclens)
    np.testing.assert_allclose(on.token_range(0, on.n_embeddings),
                               off.token_range(0, off.n_embeddings), atol=1e-5)  # fmt: skip


def test_serial_tokenization_matches_threads(build, corpus, small_config):
    threads = build(corpus, "threads", config=small_config.replace(tokenizer_workers=3))
    serial = build(corpus, "serial", config=small_config.replace(tokenizer_workers=0))
    np.testing.assert_array_equal(threads.token_range(0, threads.n_embeddings),
                                  serial.token_range(0, serial.n_embeddings))  # fmt: skip


def test_half_precision(build, corpus, docs, small_config, tiny_colbert, full_text):
    store = build(corpus, config=small_config.replace(precision=16))
    assert store.dtype == "float16" and store.embeddings_flat()[0].dtype == np.float16
    expected = tiny_colbert.encode_documents([full_text(d) for d in docs])
    for i in (0, 9, 39):
        torch.testing.assert_close(stored(store, i), expected[i], atol=2e-3, rtol=0)
    emb, _ = store.gather([0, 1])
    assert emb.dtype == torch.float16


def test_empty_and_punctuation_documents_keep_their_markers(build, corpus):
    store = build(corpus)
    assert store.doclens[5] == 3  # [CLS] [D] [SEP]
    assert store.doclens[7] == 3  # punctuation is masked
    assert store.summary.empty_docs == 1
    assert store.documents([5])[0]["text"] == ""


def test_summary_and_manifest_stats(build, corpus, docs):
    store = build(corpus)
    summary = store.summary
    assert summary.docs == len(docs) and summary.embeddings == store.n_embeddings
    assert summary.truncated_docs > 0  # doc_maxlen 24 < the longest documents
    assert summary.bytes_on_disk > 0 and summary.seconds > 0
    assert summary.embeddings_per_doc == pytest.approx(store.n_embeddings / store.n_docs)
    assert "documents" in str(summary)
    assert store.nbytes() >= summary.bytes_on_disk
    assert store.manifest.stats["docs"] == len(docs)


def test_doc_maxlen_override(build, corpus, small_config):
    store = build(corpus, config=small_config.replace(doc_maxlen=8))
    assert store.colbert_config.doc_maxlen == 8
    assert int(store.doclens.max()) <= 8
    assert store.summary.truncated_docs > 0


def test_iterable_sources(build, docs, full_text):
    pairs = [(d["_id"], full_text(d)) for d in docs[:10]]
    store = build(iter(pairs), "pairs")
    assert list(store.doc_ids) == [d["_id"] for d in docs[:10]]
    titled = build([{"id": "a", "title": "T", "text": "cat"}, ("b", "dog")], "dicts")
    assert titled.documents([0, 1]) == [
        {"doc_id": "a", "title": "T", "text": "cat", "metadata": {}},
        {"doc_id": "b", "title": "", "text": "dog", "metadata": {}},
    ]


def test_title_join_is_configurable(build, tiny_colbert, small_config):
    rows = [{"_id": "a", "title": "cat", "text": "dog"}]
    store = build(rows, config=small_config.replace(title_join=" . "))
    expected = tiny_colbert.encode_documents(["cat . dog"])[0]
    torch.testing.assert_close(stored(store, 0), expected, atol=1e-5, rtol=0)
    assert store.manifest.index_config["title_join"] == " . "


def test_open_reads_a_built_index(build, corpus, tmp_path):
    build(corpus)
    store = IndexStore.open(tmp_path / "index")
    assert store.n_docs == 40 and isinstance(store.embeddings_flat()[0], np.memmap)
    store.verify()
    store.close()
