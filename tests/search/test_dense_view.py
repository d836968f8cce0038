"""An index's dense view: one pooled vector per document beside the token vectors, stored
per chunk with the same durability (resume, add/delete, verify), and the "dense" and
"fused" modes over it, filters included."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latesearch import Index
from latesearch.errors import ConfigError, IndexCorruptError
from latesearch.indexing import IndexStore
from latesearch.indexing.components import MissingComponentError
from latesearch.search.fusion import fuse_union
from latesearch.search.modes import servable_modes
from latesearch.search.request import SearchRequest

from .conftest import read_docs, write_collection

QUERY = "protein cell study"


def dense_matrix(index: Index) -> np.ndarray:
    return np.concatenate([np.asarray(d, np.float32) for d in index.store.dense_chunks()])


def pooled_reference(model, texts: list[str]) -> np.ndarray:
    """The pooled vectors straight from the model, one text at a time."""
    rows = []
    with torch.inference_mode():
        for text in texts:
            batch = model.tokenizer.pad_documents(model.tokenizer.document_ids([text]))
            rows.append(model.embed_and_pool(batch)[1][0].numpy())
    return np.stack(rows)


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory, collection_path, tiny_colbert):
    folder = tmp_path_factory.mktemp("dense") / "index"
    return Index.build(collection_path, folder, tiny_colbert, dense="pooled", bm25=True,
                       progress=False, chunk_size=16, group_size=16)  # fmt: skip


def test_the_pooled_vectors_are_stored_per_chunk_and_checked(dense_index, collection_path,
                                                             tiny_colbert):  # fmt: skip
    store = dense_index.store
    hidden = tiny_colbert.backbone.config.hidden_size
    assert store.has_dense and store.manifest.dense_dim == hidden and len(store.chunks) == 3
    assert all(c.dense and c.dense_sha256 for c in store.chunks)
    _, texts = read_docs(collection_path)
    np.testing.assert_allclose(dense_matrix(dense_index), pooled_reference(tiny_colbert, texts),
                               atol=2e-3)  # fmt: skip (fp16 storage)
    assert dense_index.verify().complete
    assert {"dense", "fused"} <= set(servable_modes(store))


def test_dense_mode_is_exact_over_the_pooled_vectors(dense_index, tiny_colbert):
    q = tiny_colbert.encode_pooled_queries([QUERY]).numpy()[0]
    scores = dense_matrix(dense_index) @ q
    ids = list(dense_index.store.doc_ids)
    expected = [ids[i] for i in np.lexsort((np.arange(scores.size), -scores))[:5]]
    assert [h.doc_id for h in dense_index.search(QUERY, k=5, mode="dense")] == expected


def test_fused_mode_covers_both_views(dense_index):
    dense_top = [h.doc_id for h in dense_index.search(QUERY, k=5, mode="dense")]
    assert [h.doc_id for h in dense_index.search(QUERY, k=5, mode="fused",
                                                 hybrid_weight=0.0)] == dense_top  # fmt: skip
    exact_top = [h.doc_id for h in dense_index.search(QUERY, k=5, mode="exact")]
    late = dense_index.search(QUERY, k=5, mode="fused", hybrid_weight=1.0, fusion="rrf")
    assert [h.doc_id for h in late] == exact_top  # every candidate scored: the engine's top
    for fusion in ("zscore", "rrf", "score"):
        hits = dense_index.search(QUERY, k=5, mode="fused", fusion=fusion)
        assert len(hits) == 5 and len({h.doc_id for h in hits}) == 5


def test_filters_apply_to_both_views(dense_index):
    allowed = {"d1", "d2", "d3", "d30"}
    assert dense_index.search(QUERY, k=5, mode="fused", filter={"lang": "xx"}) == []
    store = dense_index.store
    idx = np.sort(store.doc_indices(sorted(allowed))[0])
    for mode in ("dense", "fused"):
        ranked = dense_index.searcher.search([QUERY], SearchRequest(k=10, mode=mode),
                                             allowed=idx)[0]
        assert {store.doc_ids[i] for i in ranked[1]} == allowed


def test_fusion_over_the_union():
    docs = np.array([7, 3, 9])
    colbert, dense = np.array([3.0, 2.0, 1.0]), np.array([0.1, 0.9, 0.5])
    scores, order = fuse_union(docs, colbert, dense, 3, fusion="zscore", weight=0.5)
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    expected = 0.5 * z(colbert) + 0.5 * z(dense)
    assert list(order) == list(docs[np.argsort(-expected)])
    np.testing.assert_allclose(scores, np.sort(expected)[::-1], rtol=1e-6)
    _, order = fuse_union(docs, colbert, dense, 2, fusion="rrf", weight=1.0)
    assert list(order) == [7, 3]
    scores, order = fuse_union(docs, np.array([3.0, -np.inf, 1.0]), dense, 3)
    assert np.isfinite(scores).all() and order[-1] in (3, 9)  # no tokens: as low as the lowest


def test_updates_keep_the_dense_view(tmp_path, tiny_colbert):
    corpus = write_collection(tmp_path / "c.jsonl", n=30)
    index = Index.build(corpus, tmp_path / "i", tiny_colbert, dense="pooled", progress=False,
                        chunk_size=8, group_size=8, nbits=None)  # fmt: skip
    extra = write_collection(tmp_path / "extra.jsonl", n=34, seed=5)
    rows = [json.loads(line) for line in extra.read_text().splitlines()][30:]
    rows = [{**r, "_id": f"new{i}"} for i, r in enumerate(rows)]
    index.update(add=rows, delete=["d3", "d17"], progress=False)
    assert index.verify().complete
    everything = [json.loads(line) for line in corpus.read_text().splitlines()
                  if json.loads(line)["_id"] not in ("d3", "d17")] + rows  # fmt: skip
    fresh = Index.build(everything, tmp_path / "fresh", tiny_colbert, dense="pooled",
                        progress=False, nbits=None)  # fmt: skip
    assert list(index.store.doc_ids) == list(fresh.store.doc_ids)
    np.testing.assert_allclose(dense_matrix(index), dense_matrix(fresh), atol=2e-3)


def test_a_resumed_build_has_the_same_dense_view(tmp_path, collection_path, tiny_colbert):
    class Crash(Exception):
        pass

    def crash(info):
        raise Crash

    from latesearch.indexing import IndexConfig, build_index

    options = {"dense": "pooled", "nbits": None, "chunk_size": 8, "group_size": 8,
               "progress": False}  # fmt: skip

    config = IndexConfig().replace(dense="pooled", nbits=None, chunk_size=8, group_size=8)
    with pytest.raises(Crash):
        build_index(collection_path, tmp_path / "r", tiny_colbert, config, progress=False,
                    on_chunk=crash)  # fmt: skip
    resumed = build_index(collection_path, tmp_path / "r", tiny_colbert, config,
                          progress=False, resume=True)  # fmt: skip
    whole = Index.build(collection_path, tmp_path / "w", tiny_colbert, **options)
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(d) for d in resumed.dense_chunks()]),
        np.concatenate([np.asarray(d) for d in whole.store.dense_chunks()]),
    )


def test_a_damaged_dense_file_is_found(tmp_path, collection_path, tiny_colbert):
    index = Index.build(collection_path, tmp_path / "i", tiny_colbert, dense="pooled",
                        progress=False)  # fmt: skip
    path = index.folder / index.store.chunks[0].dense
    vectors = np.load(path)
    vectors[0, 0] += 1
    np.save(path, vectors)
    with pytest.raises(IndexCorruptError, match="dense.npy: checksum mismatch"):
        IndexStore.open(index.folder).verify()


def test_the_backbone_source(tmp_path, collection_path, tiny_colbert, tiny_bert_dir):
    from latesearch.modeling.dense import DenseEncoder

    with pytest.raises(ConfigError, match="dense_model"):
        Index.build(collection_path, tmp_path / "x", tiny_colbert, dense="backbone",
                    progress=False)  # fmt: skip
    index = Index.build(collection_path, tmp_path / "i", tiny_colbert, dense="backbone",
                        dense_model=str(tiny_bert_dir), progress=False)  # fmt: skip
    encoder = DenseEncoder.from_pretrained(tiny_bert_dir)
    _, texts = read_docs(collection_path)
    np.testing.assert_allclose(dense_matrix(index), encoder.encode(texts).numpy(), atol=2e-3)
    q = encoder.encode([QUERY]).numpy()[0]
    scores = dense_matrix(index) @ q
    ids = list(index.store.doc_ids)
    expected = [ids[i] for i in np.lexsort((np.arange(scores.size), -scores))[:3]]
    loaded = Index.load(index.folder, tiny_colbert)
    assert [h.doc_id for h in loaded.search(QUERY, k=3, mode="dense")] == expected
    assert len(loaded.search(QUERY, k=3, mode="fused")) == 3


def test_modes_need_a_dense_view(tiny_index):
    for mode in ("dense", "fused"):  # a request the index cannot serve: 400 over HTTP
        with pytest.raises(MissingComponentError, match="needs a dense view"):
            tiny_index.search(QUERY, k=3, mode=mode)
    with pytest.raises(ConfigError, match="dense"):
        Index.build([], "unused", dense="mean")
